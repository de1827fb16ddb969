"""Step-specific rules around completing a task: which policy check applies, signatures,
objection records. Keeps engine.py about transactions and this file about the domain."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import accounts, clock, conversion, income, policy, records, signing, watch
from .catalogue import CLOSED_STATUSES, SIGN_STEP_PARTY, SIGNERS, steps_in
from .errors import GrantError, NotFound, ValidationFailed, WrongState
from .i18n import msg
from .models import (
    Application,
    ApplicationMember,
    Document,
    HumanTask,
    Objection,
    PublicityNotice,
    RegistryEntry,
    Signature,
    Unit,
    User,
)
from .runtime import ReadyTask

DECISION_STEPS = steps_in("decision")
TERMS_STEPS = steps_in("terms")
SIGN_ROLES = SIGN_STEP_PARTY


def before_complete(session: Session, actor: User, app: Application, row: HumanTask,  # noqa: PLR0912 (one branch per step)
                    task_data: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Apply the step's policy; return the payload to store (secrets removed)."""
    step = row.bpmn_id
    if step == "draft":
        _check_draft(session, app, data)
    elif step == "review":
        policy.check_review(data, task_data.get("draft", {}))
    elif step in DECISION_STEPS:
        policy.check_unit_decision(data, clock.local_date(clock.now()).isoformat())
    elif step in TERMS_STEPS:
        policy.check_terms(app.kind, data)
        policy.check_terms_as_publicized(app.kind, data, task_data.get("draft") or {})
    elif step in SIGN_ROLES:
        return _sign(session, actor, app, step, data)
    elif step == "extension_review":
        policy.check_extension_review(data)
    elif step == "handle_objection":
        return _objection_payload(session, row, data)
    elif step == "extension_request":
        if data.get("original_number") != task_data.get("original_number"):
            raise ValidationFailed([{"field": "original_number",
                                     "message": msg("原赋权申请编号应为{number}", number=task_data.get("original_number"))}])
    elif step == "ip_transfer":
        policy.check_ip_transfer(data, clock.local_date(clock.now()).isoformat())
        if data.get("evidence_document_id") is not None:
            _check_own_document(session, app, data["evidence_document_id"], "evidence_document_id")
    elif step == "conversion_plan":
        conversion.check_plan(data, _team_usernames(session, app))
        if data["valuation"].get("report_document_id") is not None:
            _check_own_document(session, app, data["valuation"]["report_document_id"], "valuation.report_document_id")
    elif step == "distribution_decision":
        policy.check_unit_decision(data, clock.local_date(clock.now()).isoformat())
        income.check_decision_after_publicity(session, app)
    elif step == "conversion_lapse":
        return watch.check_lapse_decision(app, task_data, data)
    elif step == "distribution_payments":
        income.check_payments(session, app, data)
    elif step == "conversion_contract":
        conversion.check_contract(data, task_data.get("conversion_plan") or {})
        if data.get("contract_document_id") is not None:
            _check_own_document(session, app, data["contract_document_id"], "contract_document_id")
    for item in data.get("attachments", []) or []:
        _check_own_document(session, app, item["document_id"], "attachments")
    return data


def _check_draft(session: Session, app: Application, draft: dict[str, Any]) -> None:
    usernames = [m.get("username") for m in draft.get("members", [])]
    users = session.execute(select(User).where(User.username.in_(usernames))).scalars().all()
    policy.check_draft(app.kind, draft, app.representative.username, {u.username: u.name for u in users},
                       _claimed_ip_numbers(session, app))
    app.title = draft["achievement"]["title"]
    app.ip_numbers = list(draft["achievement"].get("ip_numbers", []))
    app.members = [ApplicationMember(user_id=u.id) for u in users]


def _team_usernames(session: Session, app: Application) -> list[str]:
    """The grant's team, as the conversion's related-party declarations must list them."""
    ids = sorted(app.member_ids())
    return list(session.execute(select(User.username).where(User.id.in_(ids)).order_by(User.username)).scalars())


def _claimed_ip_numbers(session: Session, app: Application) -> set[str]:
    """IP numbers already granted, or in another open application of the unit (no double reward)."""
    claimed: set[str] = set()
    for entry in session.execute(select(RegistryEntry).where(
            RegistryEntry.unit_id == app.unit_id, RegistryEntry.application_id != app.id,
            RegistryEntry.status != "registered")).scalars():
        claimed.update(entry.ip_numbers or [])
    numbers: list[str]  # the column is NOT NULL
    for numbers in session.execute(select(Application.ip_numbers).where(
            Application.unit_id == app.unit_id, Application.id != app.id, Application.kind != "extension",
            Application.status.notin_(("refused", "withdrawn")))).scalars():
        claimed.update(numbers)
    return claimed


def _check_own_document(session: Session, app: Application, document_id: int, field: str) -> None:
    doc = session.get(Document, document_id)
    if doc is None or doc.application_id != app.id:
        raise ValidationFailed([{"field": field, "message": msg("附件不存在或不属于本申请")}])


SIGN_LABELS = {party: (label, title) for party, (_step, label, title, _doc) in SIGNERS.items()}


def _sign(session: Session, actor: User, app: Application, step: str, data: dict[str, Any]) -> dict[str, Any]:
    """Password again, never stored; then the server adds this person's PAdES signature to the PDF
    (on top of the other party's, if any) and the Signature row indexes the signed bytes."""
    policy.check_signature_decision(data)
    payload = {k: v for k, v in data.items() if k != "password"}
    if data.get("decision") != "sign":
        return payload
    if not accounts.check_password(actor, data.get("password", "")):
        raise ValidationFailed([{"field": "password", "message": msg("密码不正确，签署未生效")}])
    document = latest_document(session, app, "agreement_draft")
    if document is None:
        raise WrongState(msg("协议文本尚未生成，不能签署"))
    role = SIGN_ROLES[step]
    base = signed_so_far(session, app, document)
    label, title = SIGN_LABELS[role]  # printed in the PDF stamp: Chinese, never translated
    pdf = signing.sign_as(records.read(base), app.unit, f"Sig_{role}", actor.name, f"{label}（{actor.username}）",
                          title, username=actor.username)
    signed = records.store(session, app, "agreement_signed", f"{app.number}-协议（{label}已签署）.pdf", pdf,
                           actor=actor)
    signature = Signature(application_id=app.id, document_id=document.id, role=role,
                          user_id=actor.id, signed_at=clock.now(), sha256=signed.sha256)
    session.add(signature)
    session.flush()
    payload.update(signed_sha256=signed.sha256, signature_id=signature.id, signed_document_id=signed.id,
                   draft_sha256=document.sha256)
    return payload


def signed_so_far(session: Session, app: Application, draft: Document) -> Document:
    """The latest signed copy of this draft (signatures accumulate as incremental updates), or the draft."""
    signed = session.execute(select(Document).where(
        Document.application_id == app.id, Document.kind == "agreement_signed", Document.id > draft.id)
        .order_by(Document.id.desc()).limit(1)).scalar_one_or_none()
    return signed or draft


def latest_document(session: Session, app: Application, kind: str) -> Document | None:
    return session.execute(select(Document).where(Document.application_id == app.id, Document.kind == kind)
                           .order_by(Document.id.desc()).limit(1)).scalar_one_or_none()


# A notice's outcome once its term is over: the strongest decision on any late objection wins.
OUTCOME_RANK = {"passed": 0, "restarted": 1, "upheld": 2}
NOTICE_OUTCOME = {"dismiss": "passed", "dismiss_restart": "restarted", "uphold": "upheld"}
PUBLICITY_OUTCOME = {"passed": "passed", "restarted": "restart", "upheld": "upheld"}


def _objection_payload(session: Session, row: HumanTask, data: dict[str, Any]) -> dict[str, Any]:
    """Tell the diagram whether the term is over (then no terminate end: the other open
    objections must still be handled) and what the notice's outcome becomes."""
    objection = session.get(Objection, row.context.get("objection_id"))
    notice = session.get(PublicityNotice, objection.notice_id) if objection else None
    term_over = notice is not None and notice.closed_at is not None
    outcome = _late_outcome(notice.outcome, data["decision"]) if term_over and notice else None
    return {**data, "term_over": term_over, "outcome": PUBLICITY_OUTCOME.get(outcome or "")}


def _late_outcome(current: str | None, decision: str) -> str:
    new = NOTICE_OUTCOME[decision]
    return max(current or "passed", new, key=OUTCOME_RANK.__getitem__)


def after_complete(session: Session, actor: User, app: Application, row: HumanTask,
                   payload: dict[str, Any]) -> None:
    if row.bpmn_id == "handle_objection":
        _record_objection_handling(session, actor, row, payload)
        if app.kind == "distribution" and payload["decision"] == "uphold":
            income.plan_of(session, app).status = "refused"  # the office proposes a corrected plan
    elif row.bpmn_id == "distribution_payments":
        income.record_payments(session, app, payload)


def _record_objection_handling(session: Session, actor: User, row: HumanTask, payload: dict[str, Any]) -> None:
    objection = session.get(Objection, row.context.get("objection_id"))
    if objection is None:
        return
    objection.status = "upheld" if payload["decision"] == "uphold" else "dismissed"
    objection.decision, objection.reasoning = payload["decision"], payload["reasoning"]
    objection.handled_by_id, objection.handled_at = actor.id, clock.now()
    notice = session.get_one(PublicityNotice, objection.notice_id)
    if payload.get("term_over"):
        notice.outcome = _late_outcome(notice.outcome, payload["decision"])
    elif payload["decision"] in ("uphold", "dismiss_restart") and notice.closed_at is None:
        notice.closed_at = clock.now()
        notice.outcome = NOTICE_OUTCOME[payload["decision"]]
        _supersede_open_objections(session, notice, objection)


def _supersede_open_objections(session: Session, notice: PublicityNotice, handled: Objection) -> None:
    """The round ended during its term: the other open objections are closed on the record, not lost."""
    for other in session.execute(select(Objection).where(
            Objection.notice_id == notice.id, Objection.status == "open", Objection.id != handled.id)).scalars():
        other.status, other.handled_at = "superseded", clock.now()
        other.reasoning = msg("公示已因异议{receipt}的处理结论而结束", receipt=handled.receipt)


def task_context(task: ReadyTask) -> dict[str, Any]:
    """Facts a task list shows without loading the workflow."""
    context: dict[str, Any] = {}
    if task.bpmn_id == "handle_objection":
        context["objection_id"] = (task.data.get("objection") or {}).get("objection_id")
    if task.bpmn_id == "consent":
        context["member"] = (task.data.get("member") or {}).get("name")
    if task.bpmn_id == "conversion_lapse":
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


def unwrap(exc: Exception) -> Exception:
    """A refusal raised inside a service task reaches the person as itself, not as a crash."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GrantError):
            return seen
        seen = getattr(seen, "exception", None) or seen.__cause__
    return exc


def check_extension_origin(session: Session, actor: User, unit: Unit, number: str | None) -> Application:
    """An extension needs a completed use-right grant of this unit, filed by this representative."""
    original = session.execute(select(Application).where(Application.number == (number or ""))).scalar_one_or_none()
    if original is None or original.unit_id != unit.id:
        raise NotFound(msg("原赋权申请不存在"))
    if original.kind != "use_right" or original.status != "completed":
        raise ValidationFailed([{"field": "original_number", "message": msg("只有已完成的长期使用权赋权才能申请延长（§三(二)2）")}])
    if original.representative_id != actor.id:
        raise ValidationFailed([{"field": "original_number", "message": msg("只有原申请的团队指定代表可以申请延长")}])
    open_ext = session.execute(select(Application).where(
        Application.original_id == original.id,
        Application.status.notin_(CLOSED_STATUSES))).scalar_one_or_none()
    if open_ext is not None:
        raise WrongState(msg("该使用权已有进行中的延期申请{number}", number=open_ext.number))
    return original
