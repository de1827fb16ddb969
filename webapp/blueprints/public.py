"""The public publicity board (公示): no account needed to read notices or file an objection."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import defer, joinedload, lazyload

from workflows import forms, policy, publicity, queries, uploads
from workflows.audit import canonical
from workflows.errors import GrantError, NotFound, ValidationFailed
from workflows.models import Application, Document, Objection, PublicityNotice

from .. import database
from ..extensions import gettext as _
from . import listing
from .applications import download
from .tasks import KINDS
from .ui_helpers import errors_by_field, message_of

bp = Blueprint("public", __name__, url_prefix="/publicity")


@bp.get("")
def index():
    found = listing.page_of(board_query(), queries.NOTICE_SORTS, "ends", queries.search_notices)
    return render_template("public/index.html", items=[_summary(n) for n in found.rows], page=found,
                           q=listing.args()[2], kinds=KINDS, article=_article)


_ARTICLES: OrderedDict[tuple, Markup] = OrderedDict()
_ARTICLES_LOCK = threading.Lock()
ARTICLES_KEPT = 2000  # ~4 KB each: the rendered board costs a few MB at most


def _article(item: dict[str, Any]) -> Markup:
    """A notice's board entry, rendered once per language and kept while what it shows is
    unchanged: rendering fifty notices (Jinja macros, ~1,500 strings to translate) was most of
    the board's time. The key holds every field the entry prints."""
    n, a = item["notice"], item["app"]
    key = (str(get_locale()), n.id, n.kind, n.last_day, n.starts_at, n.document_id, a.title, a.number, a.kind,
           a.unit.code, a.unit.name, a.unit.contact, canonical(n.summary or {}))
    with _ARTICLES_LOCK:
        html = _ARTICLES.get(key)
        if html is not None:
            _ARTICLES.move_to_end(key)
            return html
    # Straight from the environment: no context processors (the top bar's counts) per entry.
    html = Markup(current_app.jinja_env.get_template("public/_article.html").render(item=item, kinds=KINDS))
    with _ARTICLES_LOCK:
        _ARTICLES[key] = html
        while len(_ARTICLES) > ARTICLES_KEPT:
            _ARTICLES.popitem(last=False)
    return html


def board_query(unit_id: int | None = None):
    """Open notices joined to their application, so the board can sort and search by it."""
    return publicity.open_notices(unit_id).join(Application, PublicityNotice.application_id == Application.id).options(
        joinedload(PublicityNotice.application).options(  # the board shows neither the team, the
            lazyload(Application.members), lazyload(Application.representative),  # representative nor
            defer(Application.summary), defer(Application.ip_numbers)))  # the application's read model


def _open_notice(notice_id: int) -> PublicityNotice:
    """A notice still on the board; closed or unknown ones are not public any more."""
    s = database.session()
    notice = s.execute(publicity.open_notices().where(PublicityNotice.id == notice_id)).scalar_one_or_none()
    if notice is None:
        raise NotFound(_("该公示不存在或公示期已结束"))
    return notice


def _summary(notice: PublicityNotice) -> dict[str, Any]:
    """What the policy asks to post: the achievement, the team, the grant, leaders' rewards."""
    app = notice.application
    summary = notice.summary or {}  # written when the notice opened: no workflow loads
    draft = summary.get("draft") or {}
    if notice.kind in ("price", "leader_reward"):  # a conversion's price (§三(五)1) or leaders' rewards (§三(六)3)
        return {"notice": notice, "app": app, "draft": draft, "leaders": [],
                "schema": forms.load_schema(f"{summary.get('grant_kind', 'ownership')}_draft.schema.json"),
                "plan": summary.get("plan") or {}, "rewards": summary.get("rewards") or [],
                "to_people": summary.get("to_people"),
                "conversion_schema": forms.load_schema("conversion_plan.schema.json")}
    schema = forms.load_schema(f"{app.kind}_draft.schema.json") if app.kind != "extension" else {}
    return {"notice": notice, "app": app, "draft": draft, "schema": schema, "plan": {},
            "leaders": policy.leaders_to_publish(draft)}


@bp.get("/<int:notice_id>")
def show(notice_id: int):
    return render_template("public/show.html", item=_summary(_open_notice(notice_id)), kinds=KINDS,
                           errors={}, form={})


@bp.get("/<int:notice_id>/notice.pdf")
def notice_pdf(notice_id: int):
    notice = _open_notice(notice_id)
    doc = database.session().get(Document, notice.document_id or 0)
    if doc is None:
        raise NotFound(_("公示文件尚未生成"))
    return download(doc, inline=True)


@bp.post("/<int:notice_id>/objection")
def object_to(notice_id: int):
    s = database.session()
    notice = _open_notice(notice_id)
    data = {k: request.form.get(k, "").strip() for k in ("name", "contact", "reason")}
    data = {k: v for k, v in data.items() if v}
    try:
        attachment_id = _attachment(notice)
        objection = publicity.file_objection(s, notice.id, data, client=publicity.client_key(
            request.remote_addr or ""), attachment_id=attachment_id)
    except ValidationFailed as exc:
        database.discard_changes()
        flash(_("异议未能提交，请按提示修改"), "error")
        return render_template("public/show.html", item=_summary(notice), kinds=KINDS,
                               errors=errors_by_field(exc), form=request.form), 422
    except GrantError as exc:
        database.discard_changes()
        flash(message_of(exc), "error")
        return render_template("public/show.html", item=_summary(notice), kinds=KINDS, errors={},
                               form=request.form), exc.status
    return redirect(url_for("public.receipt", receipt=objection.receipt))


def _attachment(notice: PublicityNotice) -> int | None:
    file = request.files.get("attachment")
    if file is None or not file.filename:
        return None
    return uploads.accept(database.session(), notice.application, file.filename, file.read(), None,
                          field="attachment").id


@bp.get("/receipt/<receipt>")
def receipt(receipt: str):
    """Proof of filing; shows no personal data, only that it was received and its state."""
    s = database.session()
    objection = s.execute(select(Objection).where(Objection.receipt == receipt)).scalar_one_or_none()
    if objection is None:
        raise NotFound(_("回执编号不存在"))
    notice = s.get(PublicityNotice, objection.notice_id)
    return render_template("public/receipt.html", objection=objection, notice=notice)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
