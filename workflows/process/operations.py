"""Service tasks of the diagrams (spiffworkflow:serviceTaskOperator), run inside the action's
transaction: documents, the publicity board and the achievement registry."""
from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.util import identity_key

from workflows import clock, settings
from workflows.catalogue import KIND, SIGNERS, KindCode, NoticeKind, NoticeOutcome, RegistryState, StepId
from workflows.conversion import watch
from workflows.documents import document_store
from workflows.errors import ValidationFailed, WrongState
from workflows.evidence import audit, pki, signing
from workflows.grants import policy
from workflows.i18n import msg
from workflows.models import Distribution, PublicityNotice, RegistryEntry, Signature

from . import runtime

if TYPE_CHECKING:  # engine imports this module for OPERATIONS
    from .engine import ServiceContext


def _documents() -> ModuleType:
    from workflows import documents  # WeasyPrint loads only when a document is made
    return documents


def _base(ctx: ServiceContext, data: dict[str, Any]) -> dict[str, Any]:
    app = ctx.application
    return {"number": app.number, "kind": app.kind, "unit": {"name": app.unit.name, "code": app.unit.code},
            "title": app.title,
            StepId.DRAFT: data.get(StepId.DRAFT) or _original_draft(ctx),
            "representative": {"username": app.representative.username, "name": app.representative.name}}


def _original_draft(ctx: ServiceContext) -> dict[str, Any]:
    """An extension has no draft of its own: its documents name the achievement of the grant."""
    app = ctx.application
    if app.original_id is None:
        return {}
    from .queries import application_data
    draft: dict[str, Any] = application_data(ctx.session.get_one(type(app), app.original_id)).get(StepId.DRAFT, {})
    return draft


def record_decision(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Renders the unit decision record (尽职免责 evidence: who decided what, when, how)."""
    app = ctx.application
    step = StepId.EXTENSION_DECISION if app.kind == KindCode.EXTENSION else StepId.UNIT_DECISION
    decision = data.get(step, {})
    actor = ctx.actor
    if actor is None:  # the decision step is always completed by a person
        raise RuntimeError("record_decision without the person who decided")
    pdf = _documents().render_decision_record({
        **_base(ctx, data), StepId.REVIEW: data.get(StepId.REVIEW) or data.get(StepId.EXTENSION_REVIEW, {}), "decision": decision,
        "recorded_by": {"username": actor.username, "name": actor.name}, "recorded_at": clock.now()})
    pdf = signing.sign_as_unit(pdf, app.unit, title="单位集体决策记录电子签章")
    doc = document_store.store(ctx.session, app, "decision_record", f"{app.number}-单位决策记录.pdf", pdf, actor=actor)
    if decision.get("result") == "approve":
        app.decided_at = clock.now()
    return {"document_id": doc.id}


def open_publicity(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Posts the notice for at least the policy's full calendar days; the timer fires when the term is over.
    Leaders' rewards (§三(六)3) run the unit's own term: the policy names none."""
    app, session = ctx.application, ctx.session
    kind = KIND[app.kind].notice
    if kind == NoticeKind.LEADER_REWARD:
        days = app.unit.leader_publicity_days
        if days < 1:
            raise WrongState(msg("领导人员奖励公示期须至少1日"))
    else:
        days = settings.get().publicity_days
        policy.check_publicity_days(days)
    starts_at, ends_at, last_day = clock.publicity_window(clock.now(), days)
    rounds = session.execute(select(func.count()).select_from(PublicityNotice)
                             .where(PublicityNotice.application_id == app.id)).scalar_one()
    notice = PublicityNotice(application_id=app.id, unit_id=app.unit_id, round=rounds + 1, starts_at=starts_at,
                             ends_at=ends_at, last_day=last_day.isoformat(), kind=kind)
    session.add(notice)
    session.flush()
    context = {**_base(ctx, data), "starts_at": starts_at, "ends_at": ends_at, "contact": app.unit.contact,
               "board_url": f"{settings.get().base_url}/publicity/{notice.id}",
               # A signed checkpoint of the unit's audit log, printed so every copy of the notice pins the past.
               "checkpoint": audit.checkpoint(session, app.unit_id)}
    original = session.get_one(type(app), app.original_id) if app.original_id else app  # read by the conversion notices only
    # What the board shows, kept with the notice so no page deserializes a workflow.
    summary: dict[str, Any] = {StepId.DRAFT: context[StepId.DRAFT]}
    if kind == NoticeKind.PRICE:
        plan = data.get(StepId.CONVERSION_PLAN) or {}
        summary.update(plan=plan, grant_kind=original.kind)
        pdf = _documents().render_price_notice({**context, "plan": plan, "original_number": original.number,
                                                "grant_kind": original.kind})
    elif kind == NoticeKind.LEADER_REWARD:
        plan = session.get_one(Distribution, data["distribution_id"])  # its process id is set after this first step
        leaders = [sh for sh in plan.shares if sh.leader_post != "none"]
        grant = session.get_one(type(app), original.original_id)
        summary.update(draft=(grant.summary or {}).get(StepId.DRAFT) or {}, grant_kind=grant.kind,
                       to_people=str(plan.to_people),
                       rewards=[{"name": sh.name, "leader_post": sh.leader_post, "contribution": sh.contribution,
                                 "mode": sh.mode, "amount": str(sh.amount)} for sh in leaders])
        pdf = _documents().render_leader_notice({**context, "original_number": original.number, "plan": plan,
                                                 "days": days, "leaders": leaders})
    else:
        pdf = _documents().render_publicity_notice(context)
    notice.summary = runtime.summary_of(summary)
    pdf = signing.sign_as_unit(pdf, app.unit, title="公示电子签章")
    notice.document_id = document_store.store(session, app, "publicity_notice", f"{app.number}-公示-{notice.round}.pdf",
                                       pdf).id
    # SpiffWorkflow fires a timer only once its time is strictly past; one microsecond before
    # the end makes the term close exactly at its end, never a moment earlier.
    return {"notice_id": notice.id, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
            "timer_at": (ends_at - timedelta(microseconds=1)).isoformat(),
            "last_day": last_day.isoformat(), "document_id": notice.document_id}


# The notice's own row only (no relationships), the statement built once: a sweep closes dozens
# a second.
_NOTICE_ROW = select(PublicityNotice).where(PublicityNotice.id == bindparam("notice_id")).options(lazyload("*"))


def close_publicity(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    notice_id = (data.get("publicity_window") or {}).get("notice_id")
    session = ctx.session
    cached = notice_id is not None and identity_key(PublicityNotice, notice_id) in session.identity_map
    notice = (session.get(PublicityNotice, notice_id) if cached
              else session.execute(_NOTICE_ROW, {"notice_id": notice_id}).scalar_one_or_none())
    if notice is not None and notice.closed_at is None:
        notice.closed_at, notice.outcome = clock.now(), NoticeOutcome.PASSED
    return {"closed": True}


def render_agreement(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Draft agreement from the agreed terms; new terms void every earlier signature."""
    app, session = ctx.application, ctx.session
    terms_key = StepId.SUPPLEMENTARY_TERMS if app.kind == KindCode.EXTENSION else StepId.AGREEMENT_TERMS
    policy.check_terms(KindCode.EXTENSION if app.kind == KindCode.EXTENSION else app.kind, data.get(terms_key, {}))
    for signature in session.execute(select(Signature).where(Signature.application_id == app.id,
                                                             Signature.valid.is_(True))).scalars():
        signature.valid, signature.invalidated_at = False, clock.now()
    pdf = _render(ctx, data, final=False, esign=True)
    doc = document_store.store(session, app, "agreement_draft", f"{app.number}-协议（待签署）.pdf", pdf, actor=ctx.actor)
    return {"document_id": doc.id, "sha256": doc.sha256}


def finalize_agreement(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Both signatures on the same draft → the signed PDF itself is the final agreement.

    Re-rendering would break the PAdES signatures, so the final document is the bytes the
    second signer produced, checked once more against the unit's certificate.
    """
    from workflows.grants.signatures import latest_document, signed_so_far
    app, session = ctx.application, ctx.session
    draft = latest_document(session, app, "agreement_draft")
    if draft is None:
        raise WrongState(msg("协议尚未由双方签署"))
    signatures = session.execute(select(Signature).where(
        Signature.application_id == app.id, Signature.valid.is_(True), Signature.document_id == draft.id)
        .order_by(Signature.signed_at, Signature.id)).scalars().all()
    if {s.role for s in signatures} != set(SIGNERS):
        raise WrongState(msg("协议尚未由双方签署"))
    signed = signed_so_far(session, app, draft)
    if signed.id == draft.id or signed.sha256 != signatures[-1].sha256:
        raise WrongState(msg("已签署的协议文件与签署记录不一致"))
    content = document_store.read(signed)
    roots = pki.trust_roots(settings.get().instance_dir, app.unit.code, app.unit.name)
    problems = signing.problems(content, roots, expected=2)
    if problems:
        raise WrongState(msg("已签署的协议未通过签名核验：{reason}", reason="；".join(problems)))
    doc = document_store.store(session, app, "agreement_final", f"{app.number}-协议（已签署）.pdf", content, actor=ctx.actor)
    return {"document_id": doc.id, "sha256": doc.sha256}


def _render(ctx: ServiceContext, data: dict[str, Any], final: bool, **extra: object) -> bytes:
    documents = _documents()
    app = ctx.application
    context = {**_base(ctx, data), "generated_at": clock.now(), "final": final, "signatures": [], **extra}
    try:
        if app.kind == KindCode.EXTENSION:
            original = ctx.session.get_one(type(app), app.original_id)
            context.update(original_number=original.number, request=data.get(StepId.EXTENSION_REQUEST, {}),
                           terms=data.get(StepId.SUPPLEMENTARY_TERMS, {}))
            pdf: bytes = documents.render_supplementary_agreement(context)
            return pdf
        context["terms"] = data.get(StepId.AGREEMENT_TERMS, {})
        pdf = documents.render_agreement(context)
        return pdf
    except documents.DocumentError as exc:
        raise ValidationFailed([{"field": "terms", "message": msg("不能生成协议：{reason}", reason=getattr(exc, "message", str(exc)))}]) from exc


def update_registry(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The granted achievement enters (or moves in) the unit's registry as 已赋权 (§三(三)4)."""
    from workflows.reporting import registry
    app = ctx.application
    draft = data.get(StepId.DRAFT) or _original_draft(ctx)
    actor = ctx.actor.username if ctx.actor is not None else "system"
    entry = registry.record_grant(ctx.session, app, draft.get("achievement", {}), draft.get("members", []), actor)
    return {"registry_id": entry.id, "status": entry.status}


def record_distribution(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The unit decided the plan: approved → the distribution notice (each person, amount, mode)."""
    app, session = ctx.application, ctx.session
    plan, decision = session.get_one(Distribution, data["distribution_id"]), data.get(StepId.DISTRIBUTION_DECISION) or {}
    if decision.get("result") != "approve":
        plan.status = "refused"
        return {"approved": False}
    plan.status = "approved"
    conv = session.get_one(type(app), app.original_id)
    pdf = _documents().render_distribution_notice({
        **_base(ctx, data), "plan": plan, "decision": decision, "conversion_number": conv.number,
        "decided_at": clock.now()})
    doc = document_store.store(session, app, "distribution_notice", f"{app.number}-收益分配公告.pdf", pdf, actor=ctx.actor)
    return {"approved": True, "document_id": doc.id}


def record_conversion(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The contract is in (§三(三)4): a licence leaves the achievement 已转化; a transfer or an equity
    investment takes it out of the registry (出库)."""
    from workflows.reporting import registry
    app, session = ctx.application, ctx.session
    plan, contract = data.get(StepId.CONVERSION_PLAN) or {}, data.get(StepId.CONVERSION_CONTRACT) or {}
    entry = session.execute(select(RegistryEntry).where(RegistryEntry.application_id == app.original_id)
                            ).scalar_one_or_none()
    if entry is None:
        raise WrongState(msg("成果库中没有该成果的登记，不能登记转化"))
    actor = ctx.actor.username if ctx.actor is not None else "system"
    target = RegistryState.CONVERTED if plan.get("mode") == "licence" else RegistryState.LEFT
    if entry.status != target:
        record = registry.record_conversion if target == RegistryState.CONVERTED else registry.record_leaving
        record(session, entry, actor, contract.get("signed_on", ""), plan.get("mode", "other"),
               contract.get("contract_number", ""), application_id=app.id)
    return {"registry_id": entry.id, "status": entry.status, "contract_number": contract.get("contract_number")}


OPERATIONS: dict[str, runtime.Operation] = {
    StepId.RECORD_DECISION: record_decision,
    StepId.OPEN_PUBLICITY: open_publicity,
    StepId.CLOSE_PUBLICITY: close_publicity,
    StepId.RENDER_AGREEMENT: render_agreement,
    StepId.FINALIZE_AGREEMENT: finalize_agreement,
    StepId.UPDATE_REGISTRY: update_registry,
    StepId.RECORD_CONVERSION: record_conversion,
    StepId.RECORD_DISTRIBUTION: record_distribution,
    **watch.OPERATIONS,
}
