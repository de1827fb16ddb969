"""REST API for conversions after a grant and their income ledger (§三(五), §三(六)). Same rules
as api.py: bearer tokens, engine functions authorize, errors are JSON with honest statuses.
The conversion's own tasks (plan, contract, objections) go through the task endpoints."""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, url_for
from sqlalchemy import select

from workflows.catalogue import KindCode, StepId
from workflows.conversion import income
from workflows.errors import GrantError, NotFound
from workflows.models import Application
from workflows.people import access
from workflows.process import engine

from ..database import session
from ..extensions import csrf
from . import api
from . import api_json as out
from .api_auth import api_user, bearer

bp = Blueprint("api_conversions", __name__, url_prefix="/api/v1")
bp.register_error_handler(GrantError, api._grant_error)


def register(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)


def _conversion(conversion_id: int) -> Application:
    conv = access.get_visible(session(), api_user(), conversion_id)
    if conv.kind != KindCode.CONVERSION:
        raise NotFound("成果转化记录不存在")
    return conv


def conversion_json(conv: Application) -> dict:
    s = session()
    data = conv.summary or {}  # the read model: no workflow loads
    grant = s.get(Application, conv.original_id)
    return {**out.application(s, conv), "grant_number": grant.number, "plan": data.get(StepId.CONVERSION_PLAN),
            "contract": data.get(StepId.CONVERSION_CONTRACT), **income.ledger(s, conv)}


@bp.get("/applications/<int:application_id>/conversions")
@bearer()
def list_conversions(application_id: int):
    grant = access.get_visible(session(), api_user(), application_id)
    rows = session().execute(select(Application).where(Application.original_id == grant.id,
                                                        Application.kind == KindCode.CONVERSION)
                             .order_by(Application.id)).scalars()
    return jsonify([out.application(session(), c) for c in rows])


@bp.post("/applications/<int:application_id>/conversions")
@bearer(write=True)
def start_conversion(application_id: int):
    s, user = session(), api_user()
    grant = access.get_visible(s, user, application_id)
    conv = engine.start_application(s, user, grant.unit, KindCode.CONVERSION, grant.number)
    return api._created(conversion_json(conv), url_for(".get_conversion", conversion_id=conv.id))


@bp.get("/conversions/<int:conversion_id>")
@bearer()
def get_conversion(conversion_id: int):
    return jsonify(conversion_json(_conversion(conversion_id)))


@bp.post("/conversions/<int:conversion_id>/income")
@bearer(write=True)
def add_income(conversion_id: int):
    """A receipt, or with `category` a deduction line (§三(六)2)."""
    body, conv = api._json_object(), _conversion(conversion_id)
    if "category" in body:
        line = income.record_deduction(session(), api_user(), conv.id, body)
        return api._created({"id": line.id, "category": line.category, "amount": str(line.amount)},
                            url_for(".get_conversion", conversion_id=conv.id))
    receipt = income.record_income(session(), api_user(), conv.id, body)
    return api._created({"id": receipt.id, "amount": str(receipt.amount), "received_on": receipt.received_on},
                        url_for(".get_conversion", conversion_id=conv.id))


@bp.post("/conversions/<int:conversion_id>/distributions")
@bearer(write=True)
def add_distribution(conversion_id: int):
    conv = _conversion(conversion_id)
    plan = income.propose_distribution(session(), api_user(), conv.id, api._json_object())
    shown = next(p for p in income.ledger(session(), conv)["distributions"] if p["id"] == plan.id)
    return api._created(shown, url_for(".get_conversion", conversion_id=conv.id))
