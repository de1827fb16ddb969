"""Service tasks of the diagrams (spiffworkflow:serviceTaskOperator), run inside the action's
transaction: documents, the publicity board and the achievement registry."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from . import clock, policy, records, runtime, settings
from .errors import ValidationFailed, WrongState
from .i18n import msg
from .models import PublicityNotice, RegistryEntry, Signature


def _documents():
    from . import documents  # WeasyPrint loads only when a document is made
    return documents


def _base(ctx, data: dict[str, Any]) -> dict[str, Any]:
    app = ctx.application
    return {"number": app.number, "kind": app.kind, "unit": {"name": app.unit.name, "code": app.unit.code},
            "draft": data.get("draft") or _original_draft(ctx),
            "representative": {"username": app.representative.username, "name": app.representative.name}}


def _original_draft(ctx) -> dict[str, Any]:
    """An extension has no draft of its own: its documents name the achievement of the grant."""
    app = ctx.application
    if app.original_id is None:
        return {}
    from .queries import application_data
    return application_data(ctx.session.get(type(app), app.original_id)).get("draft", {})


def record_decision(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Renders the unit decision record (尽职免责 evidence: who decided what, when, how)."""
    app = ctx.application
    step = "extension_decision" if app.kind == "extension" else "unit_decision"
    decision = data.get(step, {})
    actor = ctx.actor
    pdf = _documents().render_decision_record({
        **_base(ctx, data), "review": data.get("review") or data.get("extension_review", {}), "decision": decision,
        "recorded_by": {"username": actor.username, "name": actor.name}, "recorded_at": clock.now()})
    doc = records.store(ctx.session, app, "decision_record", f"{app.number}-单位决策记录.pdf", pdf, actor=actor)
    if decision.get("result") == "approve":
        app.decided_at = clock.now()
    return {"document_id": doc.id}


def open_publicity(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Posts the notice for at least 15 full calendar days; the timer fires when the term is over."""
    days = settings.get().publicity_days
    policy.check_publicity_days(days)
    app, session = ctx.application, ctx.session
    starts_at, ends_at, last_day = clock.publicity_window(clock.now(), days)
    rounds = session.execute(select(func.count()).select_from(PublicityNotice)
                             .where(PublicityNotice.application_id == app.id)).scalar_one()
    notice = PublicityNotice(application_id=app.id, unit_id=app.unit_id, round=rounds + 1, starts_at=starts_at,
                             ends_at=ends_at, last_day=last_day.isoformat(),
                             summary=runtime.summary_of({"draft": data.get("draft") or _original_draft(ctx)}))
    session.add(notice)
    session.flush()
    pdf = _documents().render_publicity_notice({
        **_base(ctx, data), "starts_at": starts_at, "ends_at": ends_at, "contact": app.unit.contact,
        "board_url": f"{settings.get().base_url}/publicity/{notice.id}"})
    notice.document_id = records.store(session, app, "publicity_notice", f"{app.number}-公示-{notice.round}.pdf",
                                       pdf).id
    # SpiffWorkflow fires a timer only once its time is strictly past; one microsecond before
    # the end makes the term close exactly at its end, never a moment earlier.
    return {"notice_id": notice.id, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
            "timer_at": (ends_at - timedelta(microseconds=1)).isoformat(),
            "last_day": last_day.isoformat(), "document_id": notice.document_id}


def close_publicity(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    notice = ctx.session.get(PublicityNotice, (data.get("publicity_window") or {}).get("notice_id"))
    if notice is not None and notice.closed_at is None:
        notice.closed_at, notice.outcome = clock.now(), "passed"
    return {"closed": True}


def render_agreement(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Draft agreement from the agreed terms; new terms void every earlier signature."""
    app, session = ctx.application, ctx.session
    terms_key = "supplementary_terms" if app.kind == "extension" else "agreement_terms"
    policy.check_terms("extension" if app.kind == "extension" else app.kind, data.get(terms_key, {}))
    for signature in session.execute(select(Signature).where(Signature.application_id == app.id,
                                                             Signature.valid.is_(True))).scalars():
        signature.valid, signature.invalidated_at = False, clock.now()
    pdf = _render(ctx, data, final=False)
    doc = records.store(session, app, "agreement_draft", f"{app.number}-协议（待签署）.pdf", pdf, actor=ctx.actor)
    return {"document_id": doc.id, "sha256": doc.sha256}


def finalize_agreement(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Both signatures on the same draft → the final PDF/A with a signature page, frozen."""
    from .steps import latest_document
    app, session = ctx.application, ctx.session
    draft = latest_document(session, app, "agreement_draft")
    signatures = session.execute(select(Signature).where(
        Signature.application_id == app.id, Signature.valid.is_(True), Signature.document_id == draft.id)
        .order_by(Signature.signed_at)).scalars().all()
    if {s.role for s in signatures} != {"representative", "unit"}:
        raise WrongState(msg("协议尚未由双方签署"))
    pdf = _render(ctx, data, final=True, draft_sha256=draft.sha256, signatures=[
        {"role": s.role, "name": s.user.name, "username": s.user.username, "signed_at": s.signed_at,
         "sha256": s.sha256} for s in signatures])
    doc = records.store(session, app, "agreement_final", f"{app.number}-协议（已签署）.pdf", pdf, actor=ctx.actor)
    return {"document_id": doc.id, "sha256": doc.sha256}


def _render(ctx, data: dict[str, Any], final: bool, **extra) -> bytes:
    documents = _documents()
    app = ctx.application
    context = {**_base(ctx, data), "generated_at": clock.now(), "final": final, "signatures": [], **extra}
    try:
        if app.kind == "extension":
            original = ctx.session.get(type(app), app.original_id)
            context.update(original_number=original.number, request=data.get("extension_request", {}),
                           terms=data.get("supplementary_terms", {}))
            return documents.render_supplementary_agreement(context)
        context["terms"] = data.get("agreement_terms", {})
        return documents.render_agreement(context)
    except documents.DocumentError as exc:
        raise ValidationFailed([{"field": "terms", "message": msg("不能生成协议：{reason}", reason=getattr(exc, "message", str(exc)))}]) from exc


def update_registry(ctx, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The granted achievement enters the unit's registry with its new status (§三(三)4)."""
    app, session = ctx.application, ctx.session
    achievement = data.get("draft", {}).get("achievement", {})
    status = {"ownership": "granted_ownership", "use_right": "granted_use_right",
              "extension": "use_right_extended"}[app.kind]
    target_id = app.original_id or app.id
    entry = session.execute(select(RegistryEntry).where(RegistryEntry.application_id == target_id)).scalar_one_or_none()
    if entry is None:
        entry = RegistryEntry(unit_id=app.unit_id, application_id=target_id, title=achievement.get("title", app.title),
                              ip_type=achievement.get("ip_type", ""), ip_numbers=achievement.get("ip_numbers", []),
                              status=status)
        session.add(entry)
    entry.status, entry.updated_at = status, clock.now()
    session.flush()
    return {"registry_id": entry.id, "status": status}


OPERATIONS = {
    "record_decision": record_decision,
    "open_publicity": open_publicity,
    "close_publicity": close_publicity,
    "render_agreement": render_agreement,
    "finalize_agreement": finalize_agreement,
    "update_registry": update_registry,
}
