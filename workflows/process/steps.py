"""Step-specific rules around completing a task: which policy check applies before a step, and
what is recorded after it (signatures in signatures.py, objection outcomes in objections.py).
Keeps engine.py about transactions and this file about the domain."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import clock, conversion
from workflows.catalogue import (
    CLOSED_STATUSES,
    SIGN_STEP_PARTY,
    KindCode,
    ObjectionDecision,
    StatusCode,
    StepId,
    steps_in,
)
from workflows.conversion import income, watch
from workflows.errors import NotFound, ValidationFailed, WrongState
from workflows.grants import policy, signatures
from workflows.i18n import msg
from workflows.models import (
    Application,
    ApplicationMember,
    Document,
    HumanTask,
    Unit,
    User,
    claim_numbers,
    claimed_numbers,
)
from workflows.publicity import objections

from .runtime import ReadyTask

DECISION_STEPS = steps_in("decision")
TERMS_STEPS = steps_in("terms")
SIGN_ROLES = SIGN_STEP_PARTY


def before_complete(session: Session, actor: User, app: Application, row: HumanTask,  # noqa: PLR0912 (one branch per step)
                    task_data: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Apply the step's policy; return the payload to store (secrets removed)."""
    step = row.bpmn_id
    if step == StepId.DRAFT:
        _check_draft(session, app, data)
    elif step == StepId.REVIEW:
        policy.check_review(data, task_data.get(StepId.DRAFT, {}))
    elif step in DECISION_STEPS:
        policy.check_unit_decision(data, clock.local_date(clock.now()).isoformat())
    elif step in TERMS_STEPS:
        policy.check_terms(app.kind, data)
        policy.check_terms_as_publicized(app.kind, data, task_data.get(StepId.DRAFT) or {})
        if app.kind == KindCode.EXTENSION:
            _check_extends(session, app, data)
    elif step in SIGN_ROLES:
        return signatures.sign_step(session, actor, app, step, data)
    elif step == StepId.EXTENSION_REVIEW:
        policy.check_extension_review(data)
    elif step == StepId.HANDLE_OBJECTION:
        return objections.handling_payload(session, row, data)
    elif step == StepId.EXTENSION_REQUEST:
        if data.get("original_number") != task_data.get("original_number"):
            raise ValidationFailed([{"field": "original_number",
                                     "message": msg("原赋权申请编号应为{number}", number=task_data.get("original_number"))}])
    elif step == StepId.IP_TRANSFER:
        policy.check_ip_transfer(data, clock.local_date(clock.now()).isoformat())
        if data.get("evidence_document_id") is not None:
            _check_own_document(session, app, data["evidence_document_id"], "evidence_document_id")
    elif step == StepId.CONVERSION_PLAN:
        conversion.check_plan(data, _team_usernames(session, app))
        if data["valuation"].get("report_document_id") is not None:
            _check_own_document(session, app, data["valuation"]["report_document_id"], "valuation.report_document_id")
    elif step == StepId.DISTRIBUTION_DECISION:
        policy.check_unit_decision(data, clock.local_date(clock.now()).isoformat())
        income.check_decision_after_publicity(session, app)
    elif step == StepId.CONVERSION_LAPSE:
        return watch.check_lapse_decision(app, task_data, data)
    elif step == StepId.DISTRIBUTION_PAYMENTS:
        income.check_payments(session, app, data)
    elif step == StepId.CONVERSION_CONTRACT:
        conversion.check_contract(data, task_data.get(StepId.CONVERSION_PLAN) or {})
        if data.get("contract_document_id") is not None:
            _check_own_document(session, app, data["contract_document_id"], "contract_document_id")
    for item in data.get("attachments", []) or []:
        _check_own_document(session, app, item["document_id"], "attachments")
    return data


def _check_draft(session: Session, app: Application, draft: dict[str, Any]) -> None:
    usernames = [m.get("username") for m in draft.get("members", [])]
    # columns, not users: no roles to load for people who are only named here
    users = session.execute(select(User.id, User.username, User.name).where(User.username.in_(usernames))).all()
    numbers = list(draft["achievement"].get("ip_numbers", []))
    # §三(一)3 reads the claims on the draft's own numbers (indexed), not every open application's
    policy.check_draft(app.kind, draft, app.representative.username, {u.username: u.name for u in users},
                       claimed_numbers(session, app.unit_id, app.id, numbers))
    # A concurrent draft may have claimed one meanwhile: the unique index decides, nothing is written then.
    policy.check_unclaimed(numbers, claim_numbers(session, app, numbers))
    app.ip_numbers = numbers  # claimed above: the listener writes nothing more for it
    app.title = draft["achievement"]["title"]
    app.members = [ApplicationMember(user_id=u.id) for u in users]


def _check_extends(session: Session, extension: Application, terms: dict[str, Any]) -> None:
    """A supplementary agreement extends (§三(二)2): its last day lies after the licence's current
    one (the grant's term, or the last extension in force)."""
    grant = session.get(Application, extension.original_id)
    period = watch.period_of(session, grant) if grant is not None else None
    if period is not None and str(terms.get("new_end_date", "")) <= period[0].isoformat():
        raise ValidationFailed([{"field": "new_end_date", "message": msg(
            "延长后到期日须晚于现行许可期限的届满日{day}（§三(二)2）", day=period[0].isoformat())}])


def _team_usernames(session: Session, app: Application) -> list[str]:
    """The grant's team, as the conversion's related-party declarations must list them."""
    ids = sorted(app.member_ids())
    return list(session.execute(select(User.username).where(User.id.in_(ids)).order_by(User.username)).scalars())


def _check_own_document(session: Session, app: Application, document_id: int, field: str) -> None:
    doc = session.get(Document, document_id)
    if doc is None or doc.application_id != app.id:
        raise ValidationFailed([{"field": field, "message": msg("附件不存在或不属于本申请")}])


def after_complete(session: Session, actor: User, app: Application, row: HumanTask,
                   payload: dict[str, Any]) -> None:
    if row.bpmn_id == StepId.HANDLE_OBJECTION:
        objections.record_handling(session, actor, row, payload)
        if app.kind == KindCode.DISTRIBUTION and payload["decision"] == ObjectionDecision.UPHOLD:
            income.plan_of(session, app).status = "refused"  # the office proposes a corrected plan
    elif row.bpmn_id == StepId.DISTRIBUTION_PAYMENTS:
        income.record_payments(session, app, payload)


def task_context(task: ReadyTask) -> dict[str, Any]:
    """Facts a task list shows without loading the workflow."""
    context: dict[str, Any] = {}
    if task.bpmn_id == StepId.HANDLE_OBJECTION:
        context["objection_id"] = (task.data.get("objection") or {}).get("objection_id")
    if task.bpmn_id == StepId.CONSENT:
        context["member"] = (task.data.get("member") or {}).get("name")
    if task.bpmn_id == StepId.CONVERSION_LAPSE:
        context.update(last_day=(task.data.get("watch") or {}).get("last_day"),
                       original_number=task.data.get("original_number"))
    window = task.data.get("publicity_window") or {}
    if window.get("notice_id"):
        context["notice_id"] = window["notice_id"]
    return context


def decision_of(payload: dict[str, Any]) -> Any:
    for key in ("decision", "result", "agree"):
        if key in payload:
            return payload[key]
    return None


def check_extension_origin(session: Session, actor: User, unit: Unit, number: str | None) -> Application:
    """An extension needs a completed use-right grant of this unit, filed by this representative."""
    original = session.execute(select(Application).where(Application.number == (number or ""))).scalar_one_or_none()
    if original is None or original.unit_id != unit.id:
        raise NotFound(msg("原赋权申请不存在"))
    if original.kind != KindCode.USE_RIGHT or original.status != StatusCode.COMPLETED:
        raise ValidationFailed([{"field": "original_number", "message": msg("只有已完成的长期使用权赋权才能申请延长（§三(二)2）")}])
    if original.representative_id != actor.id:
        raise ValidationFailed([{"field": "original_number", "message": msg("只有原申请的团队指定代表可以申请延长")}])
    ended = watch.watch_of(session, original)
    if ended is not None and (ended.summary or {}).get("watch_consequence"):
        raise WrongState(msg("该使用权的转化义务期限已届满并已按协议约定处理，不能再申请延长（赋权协议“{clause}”条款）",
                             clause=watch.clause(original.kind)))
    open_ext = session.execute(select(Application).where(
        Application.original_id == original.id, Application.kind == KindCode.EXTENSION,
        Application.status.notin_(CLOSED_STATUSES))).scalar_one_or_none()
    if open_ext is not None:
        raise WrongState(msg("该使用权已有进行中的延期申请{number}", number=open_ext.number))
    return original
