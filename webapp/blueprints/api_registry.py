"""REST API v1 for the registry and the statistics (see webapp/openapi.py): beside api.py, same
bearer tokens, same JSON errors; authorization is in workflows/reporting/registry.py and statistics.py."""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request, url_for
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from workflows import clock
from workflows.errors import GrantError, NotFound
from workflows.models import Unit
from workflows.reporting import registry, statistics

from ..database import session
from ..extensions import csrf
from ..extensions import gettext as _
from .api import _created, _grant_error, _http_error, _json_object
from .api_auth import api_user, bearer
from .api_json import iso

bp = Blueprint("api_registry", __name__, url_prefix="/api/v1")
bp.register_error_handler(GrantError, _grant_error)
bp.register_error_handler(HTTPException, _http_error)
MAX_PER_PAGE = 200


def _entry(entry, with_history: bool = False) -> dict:
    body = registry.as_dict(entry)
    if with_history:
        s = session()
        body["history"] = [{"at": iso(h.at), "actor": h.actor, "action": h.action, "changes": h.changes,
                            "application_id": h.application_id} for h in registry.history(s, entry)]
        body["applications"] = [{"id": a.id, "number": a.number, "kind": a.kind, "status": a.status}
                                for a in registry.applications(s, api_user(), entry)]
    return body


@bp.get("/registry")
@bearer()
def list_registry():
    args = request.args
    year = args.get("year", type=int)
    query = registry.search(api_user(), q=args.get("q", ""), state=args.get("state", ""),
                            ip_type=args.get("ip_type", ""), year=year, grant_kind=args.get("grant_kind", ""),
                            unit=args.get("unit", ""), sort=args.get("sort", "-registered_on"))
    page = max(args.get("page", 1, type=int) or 1, 1)
    per_page = min(max(args.get("per_page", 50, type=int) or 50, 1), MAX_PER_PAGE)
    rows, total = registry.page(session(), query, page, per_page)
    return jsonify({"items": [_entry(e) for e in rows], "total": total, "page": page, "per_page": per_page})


@bp.get("/registry/<int:entry_id>")
@bearer()
def get_registry_entry(entry_id: int):
    return jsonify(_entry(registry.get_visible(session(), api_user(), entry_id), with_history=True))


@bp.post("/registry")
@bearer(write=True)
def create_registry_entry():
    body = _json_object()
    entry = registry.register(session(), api_user(), str(body.get("unit", "")), body)
    return _created(_entry(entry, with_history=True), url_for(".get_registry_entry", entry_id=entry.id))


@bp.get("/statistics")
@bearer()
def get_statistics():
    code = request.args.get("unit", "")
    year = request.args.get("year", type=int) or clock.local_date(clock.now()).year
    unit_id = None
    if code:
        unit_id = session().execute(select(Unit.id).where(Unit.code == code)).scalar_one_or_none()
        if unit_id is None:
            raise NotFound(_("单位不存在"))
    statistics.check_may_view(api_user(), unit_id)
    return jsonify(statistics.compute(session(), unit_id, year))


def register(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
