"""The auditor's view (审计): every application of their units, filters and a CSV export.
Read-only: the pages link to the application pages, which show no write buttons to auditors."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Flask, Response, render_template, request
from flask_login import login_required
from sqlalchemy import Select, select

from workflows.catalogue import RoleCode
from workflows.models import Application
from workflows.process import queries

from .. import database
from ..extensions import gettext as _
from ..filters import local_time
from ..signed_in import me, role_required
from . import listing
from .applications import STATUSES
from .tasks import KINDS

bp = Blueprint("auditor", __name__, url_prefix="/audit")


def _query() -> Select:
    """The auditor's units (a grant without unit = every unit), then the filters in the URL."""
    units = me().units_for(RoleCode.AUDITOR)
    query = select(Application)
    if None not in units:
        query = query.where(Application.unit_id.in_(units))
    status, kind = request.args.get("status"), request.args.get("kind")
    if status in STATUSES:
        query = query.where(Application.status == status)
    if kind in KINDS:
        query = query.where(Application.kind == kind)
    query = queries.search_applications(query, request.args.get("q", "").strip())
    return queries.sorted_by(query, queries.APPLICATION_SORTS, request.args.get("sort"), "-created")[0]


@bp.get("")
@login_required
@role_required(RoleCode.AUDITOR)
def index():
    found = listing.page_of(_query(), queries.APPLICATION_SORTS, "-created")
    return render_template("audit/index.html", applications=found.rows, page=found, statuses=STATUSES, kinds=KINDS,
                           args=request.args)


@bp.get("/export.csv")
@login_required
@role_required(RoleCode.AUDITOR)
def export():
    """UTF-8 with BOM so that Excel opens the Chinese columns correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("申请编号"), _("单位"), _("类型"), _("状态"), _("成果名称"), _("知识产权编号"), _("团队代表"),
                     _("创建时间"), _("决策时间"), _("办结时间")])
    for app in database.session().execute(_query()).scalars():
        writer.writerow([app.number, app.unit.name, KINDS.get(app.kind, app.kind), STATUSES.get(app.status, app.status),
                         _cell(app.title), _cell("；".join(app.ip_numbers or [])), app.representative.name,
                         local_time(app.created_at), local_time(app.decided_at), local_time(app.closed_at)])
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=applications.csv"})


def _cell(text: str) -> str:
    """Cells starting with = + - @ would run as formulas in a spreadsheet; quote them."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def register(app: Flask) -> None:
    app.register_blueprint(bp)
