"""The registry of service achievements (成果库), the statistics dashboard and the annual report.
Thin views: workflows/reporting/registry.py, statistics.py and annual_report.py authorize and do the work."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from workflows import clock
from workflows.catalogue import RoleCode
from workflows.errors import ValidationFailed
from workflows.models import Unit, User
from workflows.reporting import annual_report, registry, sheets, statistics

from .. import database
from ..errors import errors_by_field, message_of
from ..extensions import gettext as _
from ..filters import translate
from ..signed_in import me

bp = Blueprint("registry", __name__)
PAGE_SIZE = 20
FILTERS = ("q", "state", "ip_type", "year", "grant_kind", "unit", "sort")


def office_units(user: User) -> list[Unit]:
    ids = {g.unit_id for g in user.roles if g.role == RoleCode.TTO and g.unit_id is not None}
    return list(database.session().execute(select(Unit).where(Unit.id.in_(ids)).order_by(Unit.code)).scalars())


def statistics_units(user: User) -> list[Unit]:
    """Units whose statistics the user reads (every unit for the city auditor)."""
    units = database.session().execute(select(Unit).order_by(Unit.code)).scalars().all()
    visible = []
    for unit in units:
        try:
            statistics.check_may_view(user, unit.id)
            visible.append(unit)
        except Exception:  # Forbidden: not this unit
            continue
    return visible


def _filters() -> dict[str, Any]:
    args = {k: request.args.get(k, "").strip() for k in FILTERS}
    args["year"] = int(args["year"]) if args["year"].isdigit() else None
    args["sort"] = args["sort"] or "-registered_on"
    return args


def _query():
    return registry.search(me(), **_filters())


@bp.get("/registry")
@login_required
def index():
    number = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total = registry.page(database.session(), _query(), number, PAGE_SIZE)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("registry/index.html", entries=rows, total=total, page=number,
                           pages=max(1, -(-total // PAGE_SIZE)), args=args, filters=_filters(),
                           offices=office_units(me()), all_units=_all_units(), R=registry)


def _all_units() -> list[Unit]:
    return list(database.session().execute(select(Unit).order_by(Unit.code)).scalars())


@bp.get("/registry/export.<fmt>")
@login_required
def export(fmt: str):
    rows = [registry.export_row(e) for e in database.session().execute(_query()).scalars()]
    if fmt == "csv":
        return Response(sheets.csv_bytes(registry.EXPORT_HEADERS, rows), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=registry.csv"})
    if fmt == "xlsx":
        return Response(sheets.xlsx_in_child([("成果库", registry.EXPORT_HEADERS, rows)]),
                        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": "attachment; filename=registry.xlsx"})
    abort(404)


def _form_data() -> dict[str, Any]:
    return {"title": request.form.get("title", ""), "ip_type": request.form.get("ip_type", ""),
            "ip_numbers": request.form.get("ip_numbers", ""), "inventors": request.form.get("inventors", ""),
            "funding_source": request.form.get("funding_source", ""),
            "registered_on": request.form.get("registered_on", "")}


@bp.route("/registry/new", methods=["GET", "POST"])
@login_required
def new():
    offices = office_units(me())
    if not offices:
        abort(403)
    if request.method == "GET":
        return _entry_form(None, {"registered_on": clock.local_date(clock.now()).isoformat()}, {}, offices, 200)
    try:
        entry = registry.register(database.session(), me(), request.form.get("unit", ""), _form_data())
    except ValidationFailed as exc:
        return _entry_form(None, request.form, errors_by_field(exc), offices, exc.status)
    flash(_("已登记入库"), "success")
    return redirect(url_for(".show", entry_id=entry.id))


@bp.route("/registry/<int:entry_id>/edit", methods=["GET", "POST"])
@login_required
def edit(entry_id: int):
    entry = registry.get_visible(database.session(), me(), entry_id)
    registry.check_office(me(), entry.unit_id)
    if request.method == "GET":
        facts = registry.as_dict(entry)
        form = {**facts, "ip_numbers": "\n".join(facts["ip_numbers"]),
                "inventors": "\n".join(i["username"] for i in facts["inventors"])}
        return _entry_form(entry, form, {}, [], 200)
    try:
        registry.edit(database.session(), me(), entry_id, _form_data())
    except ValidationFailed as exc:
        return _entry_form(entry, request.form, errors_by_field(exc), [], exc.status)
    flash(_("已保存"), "success")
    return redirect(url_for(".show", entry_id=entry_id))


def _entry_form(entry, form, errors, offices, status: int):
    return render_template("registry/form.html", entry=entry, form=form, errors=errors, offices=offices,
                           R=registry), status


@bp.get("/registry/<int:entry_id>")
@login_required
def show(entry_id: int):
    s, user = database.session(), me()
    entry = registry.get_visible(s, user, entry_id)
    office = any(g.role == RoleCode.TTO and g.unit_id == entry.unit_id for g in user.roles)
    return render_template("registry/show.html", entry=entry, history=registry.history(s, entry),
                           applications=registry.applications(s, user, entry), office=office, R=registry,
                           today=clock.local_date(clock.now()).isoformat())


@bp.post("/registry/<int:entry_id>/flag")
@login_required
def flag(entry_id: int):
    registry.set_flag(database.session(), me(), entry_id, request.form.get("flag", ""),
                      request.form.get("on", "").strip() or None)
    flash(_("已保存"), "success")
    return redirect(url_for(".show", entry_id=entry_id))


@bp.post("/registry/<int:entry_id>/leave")
@login_required
def leave(entry_id: int):
    try:
        registry.mark_left(database.session(), me(), entry_id, request.form.get("state", ""),
                           request.form.get("on", ""), request.form.get("mode", ""), request.form.get("contract", ""))
    except ValidationFailed as exc:
        flash(message_of(exc), "error")
        database.session().rollback()
        return redirect(url_for(".show", entry_id=entry_id))
    flash(_("已保存"), "success")
    return redirect(url_for(".show", entry_id=entry_id))


# --- statistics ---------------------------------------------------------------------------

def _unit_and_year() -> tuple[Unit | None, int, list[Unit]]:
    """The unit asked for (none: every unit, for the city auditor) and the year."""
    units = statistics_units(me())
    if not units:
        abort(403)
    code = request.args.get("unit", "")
    year = request.args.get("year", type=int) or clock.local_date(clock.now()).year
    unit = next((u for u in units if u.code == code), None)
    if unit is None and (code or RoleCode.CITY_AUDITOR not in {g.role for g in me().roles}):
        unit = units[0] if not code else abort(404)
    statistics.check_may_view(me(), unit.id if unit else None)
    return unit, year, units


@bp.get("/statistics")
@login_required
def dashboard():
    unit, year, units = _unit_and_year()
    s = database.session()
    figures = statistics.compute(s, unit.id if unit else None, year)
    charts = statistics.chart_tables(figures)
    per_unit = statistics.per_unit(s, year) if unit is None else []
    data = json.dumps({c["key"]: {"title": str(translate(c["title"])), "headers": [str(translate(h)) for h in c["headers"]],
                                  "rows": [[str(translate(r[0])), *r[1:]] for r in c["rows"]],
                                  "series": c.get("series", 1)} for c in charts}, ensure_ascii=False).replace("</", "<\\/")
    return render_template("registry/dashboard.html", unit=unit, year=year, units=units, charts=charts,
                           figures=figures, per_unit=per_unit, chart_data=data, years=_years(),
                           office=bool(unit and any(g.role == RoleCode.TTO and g.unit_id == unit.id for g in me().roles)))


def _years() -> list[int]:
    this = clock.local_date(clock.now()).year
    return list(range(this, this - 6, -1))


@bp.get("/statistics/<key>.csv")
@login_required
def chart_csv(key: str):
    unit, year, _units = _unit_and_year()
    figures = statistics.compute(database.session(), unit.id if unit else None, year)
    chart = next((c for c in statistics.chart_tables(figures) if c["key"] == key), None)
    if chart is None:
        abort(404)
    return Response(sheets.csv_bytes(chart["headers"], chart["rows"]), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={key}-{year}.csv"})


# --- annual report ------------------------------------------------------------------------

@bp.get("/statistics/report")
@login_required
def report():
    unit, year, units = _unit_and_year()
    if unit is None:
        unit = units[0]
    built = annual_report.build(database.session(), me(), unit.code, year)
    return render_template("registry/report.html", report=built, unit=unit, year=year, units=units, years=_years())


@bp.get("/statistics/report.<fmt>")
@login_required
def report_file(fmt: str):
    unit, year, units = _unit_and_year()
    unit = unit or units[0]
    built = annual_report.build(database.session(), me(), unit.code, year)
    if fmt == "pdf":
        data, mime = annual_report.to_pdf(built), "application/pdf"
    elif fmt == "xlsx":
        data, mime = annual_report.to_xlsx(built), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        abort(404)
    from urllib.parse import quote
    name = annual_report.filename(unit.code, year, fmt)
    return Response(data, mimetype=mime, headers={
        "Content-Disposition": f"attachment; filename={unit.code}-{year}.{fmt}; filename*=UTF-8''{quote(name)}"})


def _nav() -> dict[str, Any]:
    """Top-bar links: the registry for everyone signed in, statistics for those who may read them."""
    from flask_login import current_user
    if not current_user.is_authenticated:
        return {"registry_nav": None}
    roles = {g.role for g in me().roles}
    return {"registry_nav": {"statistics": bool(roles & {RoleCode.CITY_AUDITOR, *statistics.VIEWER_ROLES})}}


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(_nav)
