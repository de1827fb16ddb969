"""My applications (我的申请): the list, a new application, the application page with its
history, documents and diagram, withdrawal, and downloads checked against their SHA-256."""
from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Flask, Response, flash, redirect, render_template, request, send_file, url_for
from flask_login import login_required
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from workflows import clock, conversion
from workflows.catalogue import (
    KIND,
    STATUS_LABELS,
    KindCode,
    ObjectionDecision,
    ObjectionStatus,
    RoleCode,
    StatusCode,
    StepId,
    step_form,
)
from workflows.conversion import income, watch
from workflows.documents import document_store
from workflows.errors import Forbidden, GrantError, NotFound, ValidationFailed
from workflows.evidence import evidence_pack
from workflows.grants import application_view
from workflows.models import Application, Document, Signature, Unit, User
from workflows.people import access
from workflows.process import engine, forms, queries

from .. import database
from ..errors import errors_by_field, message_of
from ..extensions import gettext as _
from ..signed_in import me
from . import listing
from .tasks import EVENT_STEPS, KINDS, STEP_NAMES

bp = Blueprint("applications", __name__)

STATUSES = STATUS_LABELS
ACTIONS = {"start": "创建申请", "complete_task": "提交", "claim": "认领", "release": "释放",
           "reassign": "转交", "withdraw": "撤回申请", "timer": "公示期满", "objection": "收到公示异议",
           "document": "存档文件", "evidence_pack": "导出证据包", "record_income": "登记收入",
           "record_deduction": "登记扣除项", "propose_distribution": "提出分配方案",
           "conversion_reminder": "转化期限提醒", "conversion_period_lapsed": "转化期限届满",
           "conversion_period_extended": "延长转化期限", "conversion_consequence": "转化期限届满，按协议约定处理",
           "registry_register": "成果入库", "registry_grant": "成果库：已赋权", "registry_extend": "成果库：延长使用权",
           "registry_converting": "成果库：转化中", "registry_converted": "成果库：已转化", "registry_left": "成果库：出库",
           "registry_grant_lapsed": "成果库：转化期满收回，回到在库"}
DECISIONS = {True: "同意", False: "不同意", "approve": "通过", "return": "退回", "refuse": "不予通过",
             "sign": "签署", "request_changes": "要求修改", ObjectionDecision.DISMISS: "异议不成立", ObjectionDecision.UPHOLD: "异议成立",
             ObjectionDecision.DISMISS_RESTART: "异议不成立，重新公示", "extend": "延长转化期限",
             "consequence": "按协议约定处理"}
OBJECTION_STATUSES = {ObjectionStatus.OPEN: "待处理", ObjectionStatus.DISMISSED: "不成立", ObjectionStatus.UPHELD: "成立", ObjectionStatus.SUPERSEDED: "随公示结束"}


@bp.get("/applications")
@login_required
def index():
    found = listing.application_page(me())
    return render_template("applications/index.html", applications=found.rows, page=found, q=listing.args()[2],
                           kinds=KINDS, statuses=STATUSES)


@bp.route("/applications/new", methods=["GET", "POST"])
@login_required
def new():
    units = _researcher_units()
    if request.method == "GET":
        return render_template("applications/new.html", units=units, kinds=KINDS, errors={}, form={})
    s = database.session()
    unit = s.get(Unit, request.form.get("unit_id", type=int) or 0)
    if unit is None:
        raise Forbidden(_("请选择您所在的单位"))
    try:
        app = engine.start_application(s, me(), unit, request.form.get("kind", ""),
                                       request.form.get("original_number", "").strip() or None)
    except (ValidationFailed, NotFound) as exc:
        errors = errors_by_field(exc) if isinstance(exc, ValidationFailed) else {"original_number": [message_of(exc)]}
        flash(message_of(exc), "error")
        return render_template("applications/new.html", units=units, kinds=KINDS, errors=errors,
                               form=request.form), exc.status
    first = queries.current_steps(s, app)
    flash(_("已创建申请%(number)s", number=app.number), "success")
    if first:
        return redirect(url_for("tasks.show", task_id=first[0]["task_id"]))
    return redirect(url_for("applications.show", application_id=app.id))


def _researcher_units() -> list[Unit]:
    ids = me().units_for(RoleCode.RESEARCHER)
    query = select(Unit).order_by(Unit.code)
    if None not in ids:
        query = query.where(Unit.id.in_(ids))
    return list(database.session().execute(query).scalars())


@bp.get("/applications/<int:application_id>")
@login_required
def show(application_id: int):
    """Everything about one application, from the summary read model and indexed reads (no
    workflow loads; tests/web/test_application_page_statements.py bounds the statements)."""
    s = database.session()
    user = me()
    app = access.visible(user, s.execute(_SHOW, {"application_id": application_id}).unique().scalar_one_or_none())
    data = app.summary or {}  # the read model written with each state: no workflow loads
    events, actors = queries.history_with_names(s, app)
    waiting = application_view.waiting(s, app, user)
    filed = _filed(s, app, data)
    rounds = application_view.publicity_rounds(s, user, app)
    children = _children(s, app)
    return render_template(
        "applications/show.html", app=app, title=queries.working_title(s, user, app), kinds=KINDS, statuses=STATUSES,
        **filed, steps=waiting,
        history=[_event_row(e) for e in events], names=_names(s, events, actors),
        document_groups=application_view.document_groups(s, user, app, filed["submitted"], rounds),
        signatures=list(s.execute(_SIGNATURES, {"application_id": app.id}).scalars()),
        rounds=rounds, trail=queries.step_trail(s, app),
        may_withdraw=user.id == app.representative_id and app.status in engine.WITHDRAWABLE,
        may_evidence=_may_download_evidence(app), step_names=STEP_NAMES, team=_team(s, app, data),
        record=queries.agreement_record(app, data), objection_statuses=OBJECTION_STATUSES,
        my_tasks={w["task_id"] for w in waiting if w["mine"]},
        conversions=conversions_view(s, user, app, data, children), deduction_names=income.DEDUCTIONS,
        period=_period_view(s, app, children))


# The page reads the representative's name, never their roles (a selectin otherwise).
PAGE_OPTIONS = (joinedload(Application.representative).lazyload(User.roles),)
PAGE_SIGNATURE_OPTIONS = (joinedload(Signature.user).lazyload(User.roles),)
# The application page's statements, built once with the id bound (building and keying each
# was ~0.3–1 ms of CPU a page): the application joins its team (not the relationship's own SELECT).
_SHOW = (select(Application).options(*PAGE_OPTIONS, joinedload(Application.members))
         .where(Application.id == bindparam("application_id")))
_SIGNATURES = (select(Signature).where(Signature.application_id == bindparam("application_id"))
               .options(*PAGE_SIGNATURE_OPTIONS).order_by(Signature.id))
_CHILDREN = (select(Application).where(Application.original_id == bindparam("application_id"),
                                       Application.kind.in_((KindCode.CONVERSION, watch.KIND)))
             .options(*PAGE_OPTIONS).order_by(Application.id))


def _children(s, app) -> list[Any] | None:
    """A grant's conversions and its conversion-period watch, in one statement (None: a kind
    that has neither, which the page asks about in its own way)."""
    if app.kind in (KindCode.CONVERSION, KindCode.DISTRIBUTION, watch.KIND):
        return None
    return list(s.execute(_CHILDREN, {"application_id": app.id}).scalars())


def _period_view(s, app, children: list[Any] | None = None) -> dict[str, Any] | None:
    """A grant, and its watch, show the conversion period and what the watch did."""
    if app.kind == watch.KIND:
        return watch.view(s, s.get(type(app), app.original_id))
    if app.kind not in watch.GRANT_KINDS:
        return None
    if children is None:
        return watch.view(s, app)
    return watch.view_of(next((c for c in children if c.kind == watch.KIND), None))


def _filed(s, app, data: dict[str, Any]) -> dict[str, Any]:
    """The filed content at the revision asked for (`?revision=N`, default the latest), the list
    of its revisions, and every other step's submissions (each round, oldest first)."""
    filed_key = KIND[app.kind].filed_step
    every = application_view.submissions(s, app)
    revisions = [r for r in every if r.step == filed_key]
    chosen = application_view.pick_revision(revisions, request.args.get("revision"))
    return {"filed": chosen.payload if chosen else data.get(filed_key), "filed_revision": chosen, "submitted": every,
            "revisions": revisions, "filed_schema": forms.load_schema(step_form(filed_key, app.kind)),
            "other_submissions": [r for r in every if r.step != filed_key], "load_schema": forms.load_schema}


def conversions_view(s, user, app, data: dict[str, Any], children: list[Any] | None = None) -> dict[str, Any]:
    """A grant lists its conversions (and may start one); a conversion shows its contract and ledger."""
    if app.kind == KindCode.CONVERSION:
        may_book = app.status == StatusCode.COMPLETED and user.has_role(RoleCode.TTO, app.unit_id) and user.id not in app.member_ids()
        return {"contract": data.get(StepId.CONVERSION_CONTRACT), "grant": s.get(type(app), app.original_id),
                "may_book": may_book, "today": clock.local_date(clock.now()).isoformat(), **income.ledger(s, app)}
    if app.kind == KindCode.DISTRIBUTION:  # the plan this process decides, within its conversion's ledger
        conv = s.get(type(app), app.original_id)
        ledger = income.ledger(s, conv)
        ledger["distributions"] = [p for p in ledger["distributions"] if p["process_id"] == app.id]
        return {"contract": (conv.summary or {}).get(StepId.CONVERSION_CONTRACT), "grant": conv, **ledger}
    rows = ([c for c in children if c.kind == KindCode.CONVERSION] if children is not None else
            s.execute(select(type(app)).where(type(app).original_id == app.id, type(app).kind == KindCode.CONVERSION)
                      .order_by(type(app).id)).scalars().all())
    may_start = app.status == StatusCode.COMPLETED and app.kind in conversion.GRANT_KINDS and (
        user.id == app.representative_id or user.has_role(RoleCode.TTO, app.unit_id))
    return {"list": rows, "may_start": may_start}


@bp.post("/applications/<int:application_id>/conversions")
@login_required
def start_conversion(application_id: int):
    s = database.session()
    grant = access.get_visible(s, me(), application_id)
    try:
        conv = engine.start_application(s, me(), grant.unit, KindCode.CONVERSION, grant.number)
    except GrantError as exc:
        s.rollback()  # nothing of the refused start may be committed by the redirect below
        flash(message_of(exc), "error")
        return redirect(url_for("applications.show", application_id=grant.id))
    flash(_("已发起成果转化%(number)s，由成果转化部门拟定转化方案", number=conv.number), "success")
    return redirect(url_for("applications.show", application_id=conv.id))


def _event_row(event) -> dict[str, Any]:
    decision = (event.detail or {}).get("decision")
    return {"at": event.at, "actor": event.actor, "action": ACTIONS.get(event.action, event.action),
            "step": EVENT_STEPS.get(event.step, event.step) or (event.detail or {}).get("task", ""),
            "decision": DECISIONS.get(decision, "" if decision is None else str(decision)),
            "detail": event.detail or {}}


def _names(s, events, actors: dict[str, str]) -> dict[str, str]:
    """Names of the history's actors (read with it) and of whom a step was handed to (`to`):
    a statement only for those not already known."""
    wanted = {(e.detail or {}).get("to", "") for e in events} - set(actors) - {""}
    rows = s.execute(select(User.username, User.name).where(User.username.in_(wanted))).all() if wanted else []
    return {"system": _("系统"), "public": _("社会公众"), **actors, **dict(rows)}


def _team(s, app, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Members as filed (with shares); before the first draft, just the representative."""
    members = (data.get(StepId.DRAFT) or {}).get("members")
    if members:
        return members
    return [{"username": app.representative.username, "name": app.representative.name}]


def _may_download_evidence(app) -> bool:
    return access.may_download_evidence(me(), app)


@bp.post("/applications/<int:application_id>/withdraw")
@login_required
def withdraw(application_id: int):
    s = database.session()
    access.get_visible(s, me(), application_id)
    engine.withdraw(s, me(), application_id)
    flash(_("申请已撤回，记录将保留备查"), "success")
    return redirect(url_for("applications.show", application_id=application_id))


@bp.get("/applications/<int:application_id>/evidence")
@login_required
def evidence(application_id: int):
    """The whole evidence file (ZIP) for auditors, the tech-transfer office and the team."""
    s = database.session()
    app = access.get_visible(s, me(), application_id)
    filename, content = evidence_pack.evidence_pack(s, app, me())
    return send_file(io.BytesIO(content), mimetype="application/zip", as_attachment=True, download_name=filename)


@bp.get("/documents/<int:document_id>")
@login_required
def document(document_id: int):
    """A stored file, only if its bytes still match the SHA-256 recorded when it was made."""
    doc = access.get_visible_document(database.session(), me(), document_id)
    return download(doc, inline=request.args.get("inline") == "1")


def download(doc: Document, inline: bool = False) -> Response:
    content = document_store.read(doc)  # TamperedDocument → the error page, status 500, never the bytes
    response = send_file(io.BytesIO(content), mimetype=doc.content_type, as_attachment=not inline,
                         download_name=doc.filename, etag=doc.sha256, conditional=True, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Content-SHA256"] = doc.sha256
    return response


@bp.get("/applications/<int:application_id>/diagram.bpmn")
@login_required
def diagram(application_id: int):
    """The BPMN XML of the exact process version this application runs on."""
    app = access.get_visible(database.session(), me(), application_id)
    version = app.state.process_version
    text = version.files.get(f"{version.process_id}.bpmn")
    if text is None:
        raise NotFound(_("流程图不存在"))
    return Response(text, mimetype="application/xml")


def register(app: Flask) -> None:
    app.register_blueprint(bp)

