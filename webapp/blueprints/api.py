"""REST API v1 (JSON, bearer tokens). Thin views: parse, authorize through workflows/, call one
engine function, answer JSON. The contract is webapp/openapi.py, served at /api/v1/openapi.json.

CSRF-exempt on purpose: the API never reads the session cookie, only `Authorization: Bearer`,
so a foreign page cannot make a browser act through it.
"""
from __future__ import annotations

from http import HTTPStatus
from io import BytesIO
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, send_file, url_for
from sqlalchemy import false, select
from werkzeug.exceptions import HTTPException

from workflows import publicity, settings
from workflows.catalogue import RoleCode
from workflows.documents import document_store, uploads
from workflows.errors import Forbidden, GrantError, NotFound, ValidationFailed
from workflows.evidence import pki
from workflows.models import Application, HumanTask, Incident, PublicityNotice, Unit, User
from workflows.people import access, accounts
from workflows.process import engine, incidents, queries

from .. import openapi
from ..database import session
from ..errors import message_of, translated_errors
from ..extensions import csrf
from ..extensions import gettext as _
from . import api_json as out
from . import listing, public
from .api_auth import Unauthorized, api_user, bearer, issue_token
from .api_files import document_for, evidence_pack, may_attach

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)


# --- errors: every failure is JSON {error, errors?} with an honest status --------------------

@bp.errorhandler(GrantError)
def _grant_error(exc: GrantError):
    body: dict[str, Any] = {"error": message_of(exc)}
    if isinstance(exc, ValidationFailed):
        body["errors"] = translated_errors(exc)
    response = jsonify(body)
    response.status_code = exc.status
    if exc.status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    response = jsonify({"error": exc.description or exc.name})
    response.status_code = exc.code or 500
    return response


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object; anything else is a malformed request (GrantError: 400)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise GrantError(_("请求体必须是 JSON 对象"))
    return body


def _created(body: dict[str, Any], location: str):
    response = jsonify(body)
    response.status_code, response.headers["Location"] = 201, location
    return response


# --- tokens and me ----------------------------------------------------------------------------

@bp.post("/tokens")
def create_token():
    body, s = _json_object(), session()
    try:
        user = accounts.authenticate(s, str(body.get("username", "")), str(body.get("password", "")),
                                     client=request.remote_addr or "")
    except Forbidden:
        raise  # locked out: 403, nothing new to record
    except GrantError as exc:
        # Deliberate exception to one-commit-per-request: the 401 below would roll the request
        # back and lose the failed-login count that drives the lockout, so it is committed here.
        s.commit()
        raise Unauthorized(exc.message) from exc
    return jsonify({"token": issue_token(user)}), 201


@bp.get("/me")
@bearer()
def me():
    return jsonify(out.me(api_user()))


# --- applications -----------------------------------------------------------------------------

@bp.get("/applications")
@bearer()
def list_applications():
    where = tuple(getattr(Application, key) == request.args[key] for key in ("status", "kind")
                  if request.args.get(key))
    found = listing.application_page(api_user(), where)
    steps = queries.current_steps_of(session(), [a.id for a in found.rows])
    return listing.api_response(found, lambda a: out.application(session(), a, steps=steps[a.id]))


@bp.post("/applications")
@bearer(write=True)
def start_application():
    body, s, user = _json_object(), session(), api_user()
    unit = _unit_for_new_application(user, body.get("unit"))
    original = body.get("original_number")
    app = engine.start_application(s, user, unit, str(body.get("kind", "")),
                                   None if original is None else str(original))
    steps = queries.current_steps(s, app)
    row = queries.task_row(s, steps[0]["task_id"]) if steps else None
    first = out.task_columns(row) if row is not None else None
    return _created({**out.application(s, app, steps=steps), "task": first},
                    url_for(".get_application", application_id=app.id))


def _unit_for_new_application(user: User, code: Any) -> Unit:
    """The unit named by its code, else the one unit where the person is a researcher."""
    if code:
        unit = session().execute(select(Unit).where(Unit.code == str(code))).scalar_one_or_none()
        if unit is None:
            raise ValidationFailed([{"field": "unit", "message": _("单位代码不存在")}])
        return unit
    units = user.units_for(RoleCode.RESEARCHER)
    if not units:
        raise Forbidden(_("您没有科研人员角色，不能提交申请"))
    if len(units) > 1 or None in units:
        raise ValidationFailed([{"field": "unit", "message": _("您可在多个单位提交申请，请指定单位代码")}])
    return session().get(Unit, next(iter(units)))


@bp.get("/applications/<int:application_id>")
@bearer()
def get_application(application_id: int):
    s = session()
    return jsonify(out.application(s, access.get_visible(s, api_user(), application_id), with_history=True))


@bp.post("/applications/<int:application_id>/withdraw")
@bearer(write=True)
def withdraw(application_id: int):
    s = session()
    access.get_visible(s, api_user(), application_id)  # other teams' ids: 404 before any 403
    return jsonify(out.application(s, engine.withdraw(s, api_user(), application_id)))


@bp.post("/applications/<int:application_id>/attachments")
@bearer(write=True)
def upload_attachment(application_id: int):
    s, user = session(), api_user()
    app = access.get_visible(s, user, application_id)
    may_attach(user, app)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed([{"field": "file", "message": _("请选择要上传的文件")}])
    doc = uploads.accept(s, app, upload.filename, upload.read(), user)
    return _created(out.document(doc), url_for(".get_document", document_id=doc.id))


@bp.get("/applications/<int:application_id>/documents")
@bearer()
def list_documents(application_id: int):
    s = session()
    app = access.get_visible(s, api_user(), application_id)
    return jsonify([out.document(d) for d in queries.documents(s, app)])


@bp.get("/applications/<int:application_id>/evidence")
@bearer()
def get_evidence(application_id: int):
    s = session()
    filename, content = evidence_pack(s, api_user(), access.get_visible(s, api_user(), application_id))
    return send_file(BytesIO(content), mimetype="application/zip", as_attachment=True, download_name=filename)


@bp.get("/documents/<int:document_id>")
@bearer()
def get_document(document_id: int):
    doc = document_for(session(), api_user(), document_id)
    content = document_store.read(doc)  # TamperedDocument (500) before a single byte leaves
    response = send_file(BytesIO(content), mimetype=doc.content_type, as_attachment=True,
                         download_name=doc.filename, etag=doc.sha256, conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# --- tasks ------------------------------------------------------------------------------------

@bp.get("/tasks")
@bearer()
def list_tasks():
    found = listing.task_page(api_user(), kind=request.args.get("kind") or None, step=request.args.get("step") or None,
                              plain=True)
    return listing.api_response(found, lambda row: out.task(row) if isinstance(row, HumanTask) else out.task_columns(row))


def _visible_task(task_id: str):
    """The task, if its application is visible to the caller (404 otherwise: no leaks)."""
    s = session()
    row = engine.get_task(s, task_id)
    access.get_visible(s, api_user(), row.application_id)
    return row


@bp.get("/tasks/<task_id>")
@bearer()
def get_task(task_id: str):
    return jsonify(out.task_detail(session(), api_user(), _visible_task(task_id)))


@bp.post("/tasks/<task_id>/claim")
@bearer(write=True)
def claim_task(task_id: str):
    _visible_task(task_id)
    s = session()
    row = engine.claim_task(s, api_user(), task_id)
    # claim_task sets assignee_id only; reload the already-loaded `assignee` relationship.
    s.flush()
    s.expire(row, ["assignee"])
    return jsonify(out.task(row))


@bp.post("/tasks/<task_id>/complete")
@bearer(write=True)
def complete_task(task_id: str):
    data = _json_object()
    row = _visible_task(task_id)  # held: the engine finds it in the session instead of loading it again
    s = session()
    app = engine.complete_task(s, api_user(), row.id, data)
    return jsonify(out.application(s, app))


# --- incidents: failed timer steps (administrators of every unit) --------------------------------

def _incident(row: Incident) -> dict[str, Any]:
    return {"id": row.id, "application_id": row.application_id, "application_number": row.application.number,
            "kind": row.kind, "error": row.error, "attempts": row.attempts, "created_at": out.iso(row.created_at),
            "updated_at": out.iso(row.updated_at), "next_retry_at": out.iso(row.next_retry_at),
            "resolved_at": out.iso(row.resolved_at)}


@bp.get("/incidents")
@bearer()
def list_incidents():
    if None not in api_user().units_for(RoleCode.ADMIN):
        raise Forbidden(_("只有系统管理员可以查看故障"))
    rows = incidents.listing(session(), include_resolved=request.args.get("all") in ("1", "true"))
    return jsonify([_incident(row) for row in rows])


@bp.post("/incidents/<int:incident_id>/retry")
@bearer(write=True)
def retry_incident(incident_id: int):
    """Run the failed step now; 200 either way, `resolved_at` tells whether it went through."""
    return jsonify(_incident(engine.retry_incident(session(), api_user(), incident_id)))


# --- public: the publicity board and objections (no token) -------------------------------------

@bp.get("/publicity")
def list_notices():
    s, code = session(), request.args.get("unit")
    unit_id = s.execute(select(Unit.id).where(Unit.code == code)).scalar_one_or_none() if code else None
    query = public.board_query(unit_id)
    if code and unit_id is None:
        query = query.where(false())
    found = listing.page_of(query, queries.NOTICE_SORTS, "ends", queries.search_notices, key=PublicityNotice.id)
    return listing.api_response(found, out.notice)


@bp.get("/publicity/archive")
def list_archived_notices():
    """Past notices of every kind with their outcome; the same list envelope as the board."""
    s, code, kind = session(), request.args.get("unit"), request.args.get("kind")
    unit_id = s.execute(select(Unit.id).where(Unit.code == code)).scalar_one_or_none() if code else None
    query = public.archive_query(unit_id, kind if kind in public.NOTICE_KINDS else None)
    if (code and unit_id is None) or (kind and kind not in public.NOTICE_KINDS):
        query = query.where(false())
    found = listing.page_of(query, queries.NOTICE_SORTS, "-ends", queries.search_notices)
    return listing.api_response(found, out.archived_notice, public.archived_rows(found.rows))


@bp.get("/publicity/<int:notice_id>")
def show_notice(notice_id: int):
    """One notice, open or past: its address keeps answering after the term."""
    return jsonify(out.archived_notice(public.archived_rows([public.notice_or_404(notice_id)])[0]))


@bp.post("/publicity/receipts")
def lookup_receipt():
    """An objection's processing state by its receipt number and the contact given when filing."""
    body, s = _json_object(), session()
    receipt, contact = str(body.get("receipt", "")).strip(), str(body.get("contact", ""))
    missing = [{"field": k, "message": _("请填写回执编号") if k == "receipt" else _("请填写提交异议时留下的联系方式")}
               for k, v in (("receipt", receipt), ("contact", contact.strip())) if not v]
    if missing:
        raise ValidationFailed(missing)
    try:
        objection = publicity.lookup_receipt(s, receipt[:40], contact[:200], publicity.client_key(request.remote_addr or ""))
    except Forbidden as exc:
        raise _TooMany(exc.message) from exc
    except GrantError as exc:
        s.commit()  # like a failed sign-in: the attempt counters must stay counted
        raise NotFound(exc.message) from exc
    return jsonify(out.receipt_status(publicity.receipt_status(s, objection)))


@bp.post("/publicity/<int:notice_id>/objections")
def file_objection(notice_id: int):
    data, client = _json_object(), publicity.client_key(request.remote_addr or "")
    try:
        objection = publicity.file_objection(session(), notice_id, data, client)
    except Forbidden as exc:  # the engine's per-client daily limit
        raise _TooMany(exc.message) from exc
    return jsonify(out.objection_receipt(objection)), 201


@bp.get("/units/<code>/certificate")
def unit_certificate(code: str):
    """The certificate(s) to trust for the unit's PDF signatures (PEM), so anyone can validate them."""
    unit = session().execute(select(Unit).where(Unit.code == code)).scalar_one_or_none()
    if unit is None:
        raise NotFound(_("单位不存在"))
    pem = pki.certificate_pem(settings.get().instance_dir, unit.code, unit.name)
    return Response(pem, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f'inline; filename="{unit.code}-signing-ca.pem"'})


class _TooMany(GrantError):
    status = 429


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())
