"""The conversion's income ledger as pages (§三(六)): the office records a receipt or a deduction
with its evidence, and proposes a distribution plan, which starts the distribution process.
The same engine functions as POST /api/v1/conversions/{id}/income and …/distributions."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from workflows.conversion import income
from workflows.documents import uploads
from workflows.errors import GrantError, ValidationFailed
from workflows.people import access

from .. import database
from ..errors import message_of
from ..signed_in import me

bp = Blueprint("ledger", __name__)
SHARE_ROWS = 5  # blank rows on the plan form; empty ones are left out
SHARE_FIELDS = ("username", "name", "leader_post", "mode", "amount", "contribution")


def register(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.post("/conversions/<int:conversion_id>/income")
@login_required
def add_income(conversion_id: int):
    """A receipt, or with a category a deduction line, each with its uploaded evidence."""
    def book(s, conv) -> str:
        data = _fields("received_on", "amount", "note", "category", "incurred_on")
        data["evidence_document_id"] = _evidence(s, conv)
        if data.get("category"):
            income.record_deduction(s, me(), conv.id, data)
            return _("已登记扣除项")
        income.record_income(s, me(), conv.id, data)
        return _("已登记收入")
    return _act(conversion_id, book)


@bp.post("/conversions/<int:conversion_id>/distributions")
@login_required
def add_distribution(conversion_id: int):
    def propose(s, conv) -> str:
        data: dict[str, Any] = _fields("period_from", "period_to", "net_income", "to_people", "to_office", "to_unit")
        data["shares"] = [row for row in (_share(i) for i in range(SHARE_ROWS)) if row]
        plan = income.propose_distribution(s, me(), conv.id, data)
        return _("已提出收益分配方案，进入%(number)s", number=s.get(type(conv), plan.process_id).number)
    return _act(conversion_id, propose)


def _act(conversion_id: int, action) -> Any:
    s = database.session()
    conv = access.get_visible(s, me(), conversion_id)
    try:
        flash(action(s, conv), "success")
    except GrantError as exc:
        s.rollback()  # the upload of a refused line goes too
        flash(message_of(exc), "error")
    return redirect(url_for("applications.show", application_id=conv.id) + "#ledger")


def _fields(*names: str) -> dict[str, str]:
    return {n: request.form.get(n, "").strip() for n in names if request.form.get(n, "").strip()}


def _share(i: int) -> dict[str, str] | None:
    row = {f: request.form.get(f"shares.{i}.{f}", "").strip() for f in SHARE_FIELDS}
    if not (row["username"] or row["name"]):
        return None
    return {k: v for k, v in row.items() if v or k == "contribution"}


def _evidence(s, conv) -> int:
    upload = request.files.get("evidence")
    if upload is None or not upload.filename:
        raise ValidationFailed([{"field": "evidence", "message": _("请上传本次转化的证明材料")}])
    return uploads.accept(s, conv, upload.filename, upload.read(), me(), field="evidence").id
