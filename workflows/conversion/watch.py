"""The conversion period watch (转化期限 of the ownership agreement, §三(一)4; the conversion
obligations within the licence term of the use-right agreement, §三(二)2).

bpmn/conversion_watch.bpmn runs one instance per completed grant: reminders to the team and
the office a unit-set number of days before the period lapses (default 90 and 30), then, if no
conversion contract was recorded, a task for the office to extend the period or to record that
the agreement's consequence applies. The functions below are its service tasks and the rules of
that task; they flush, never commit."""
from __future__ import annotations

import calendar
import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import KindCode, RegistryState, RoleCode, StatusCode, StepId
from workflows.errors import Forbidden, ValidationFailed, WrongState
from workflows.evidence import audit
from workflows.i18n import Message, msg
from workflows.models import Application, RegistryEntry, RoleGrant, Signature, Unit, User
from workflows.people import notify

if TYPE_CHECKING:
    from workflows.process.engine import ServiceContext

GRANT_KINDS = (KindCode.OWNERSHIP, KindCode.USE_RIGHT)
KIND = KindCode.WATCH
# The clause of each agreement that fixes the period (as printed by workflows/documents).
CLAUSES: dict[str, Message] = {KindCode.OWNERSHIP: msg("转化期限"), KindCode.USE_RIGHT: msg("成果转化义务")}
TIMER_LEAD = timedelta(microseconds=1)  # SpiffWorkflow fires only once a due time is strictly past


def clause(grant_kind: str) -> Message:
    return CLAUSES.get(grant_kind, CLAUSES[KindCode.OWNERSHIP])


# --- the period the agreement fixes ---------------------------------------------------------

def period_of(session: Session, grant: Application) -> tuple[date, datetime] | None:
    """(last day, lapse instant) of the grant's conversion period, or None without the terms.

    Ownership: "自本协议生效之日起N个月内" — the agreement takes effect when the unit signs; as in
    Art. 201 of the Civil Code the term runs from the next day and ends with the corresponding
    day N months on. Use right: the last day of the licence term. The period lapses at the end
    of its last day (midnight, Shanghai)."""
    terms = (grant.summary or {}).get(StepId.AGREEMENT_TERMS) or {}
    if grant.kind == KindCode.OWNERSHIP:
        months = terms.get("conversion_period_months")
        if not isinstance(months, int) or months < 1:
            return None
        last_day = add_months(_effective_day(session, grant), months)
    elif grant.kind == KindCode.USE_RIGHT:
        start, years = terms.get("licence_start_date"), terms.get("licence_term_years")
        if not isinstance(start, str) or not isinstance(years, int) or years < 1:
            return None
        last_day = max([add_months(date.fromisoformat(start), 12 * years) - timedelta(days=1),
                        *(extended_last_day(e) for e in _completed_extensions(session, grant))])
    else:
        return None
    return last_day, lapse_instant(last_day)


def extended_last_day(extension: Application) -> date:
    """The licence's last day under a supplementary agreement (补充协议, "延长后的许可期限至…止")."""
    return date.fromisoformat((extension.summary or {})[StepId.SUPPLEMENTARY_TERMS]["new_end_date"])


def _completed_extensions(session: Session, grant: Application) -> list[Application]:
    return list(session.execute(select(Application).where(
        Application.original_id == grant.id, Application.kind == KindCode.EXTENSION,
        Application.status == StatusCode.COMPLETED)).scalars())


def lapse_instant(last_day: date) -> datetime:
    return clock.start_of_local_day(last_day + timedelta(days=1))


def add_months(day: date, months: int) -> date:
    """The corresponding day `months` later; the month's last day when it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _effective_day(session: Session, grant: Application) -> date:
    signed_at = session.execute(select(Signature.signed_at).where(
        Signature.application_id == grant.id, Signature.role == "unit", Signature.valid.is_(True))
        .order_by(Signature.signed_at.desc())).scalars().first()
    return clock.local_date(signed_at or grant.closed_at or clock.now())


def seed(session: Session, grant: Application) -> dict[str, Any] | None:
    """The data a watch starts with, or None when the grant fixes no period."""
    if grant.kind not in GRANT_KINDS or grant.status != StatusCode.COMPLETED:
        return None
    period = period_of(session, grant)
    if period is None:
        return None
    last_day, lapse_at = period
    return {"kind": KIND, "unit_code": grant.unit.code, "original_number": grant.number,
            "grant_kind": grant.kind, "title": grant.title,
            "period": {"last_day": last_day.isoformat(), "lapse_at": lapse_at.isoformat()}}


def watch_of(session: Session, grant: Application) -> Application | None:
    return session.execute(select(Application).where(Application.original_id == grant.id,
                                                     Application.kind == KIND)).scalar_one_or_none()


def converted(session: Session, grant: Application) -> bool:
    """A conversion counts once its contract is recorded (the conversion process completed), or
    once the registry shows the achievement converted or out of the registry."""
    done = session.execute(select(Application.id).where(
        Application.original_id == grant.id, Application.kind == KindCode.CONVERSION,
        Application.status == StatusCode.COMPLETED).limit(1)).first()
    if done is not None:
        return True
    entry = _entry(session, grant)
    return entry is not None and entry.status in (RegistryState.CONVERTED, RegistryState.LEFT)


def _entry(session: Session, grant: Application) -> RegistryEntry | None:
    return session.execute(select(RegistryEntry).where(RegistryEntry.application_id == grant.id)).scalar_one_or_none()


# --- service tasks --------------------------------------------------------------------------

def schedule(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The reminder and lapse instants of the current period (re-armed after each extension)."""
    unit: Unit = ctx.application.unit
    current = data.get("watch_extension") or data["period"]
    lapse_at = datetime.fromisoformat(current["lapse_at"])
    first_days, second_days = sorted((unit.conversion_reminder_first_days,
                                      unit.conversion_reminder_second_days), reverse=True)
    first_at, second_at = lapse_at - timedelta(days=first_days), lapse_at - timedelta(days=second_days)
    return {"round": (data.get("watch") or {}).get("round", 0) + 1, "last_day": current["last_day"],
            "lapse_at": lapse_at.isoformat(), "first_days": first_days, "second_days": second_days,
            "first_at": first_at.isoformat(), "second_at": second_at.isoformat(),
            "first_timer": (first_at - TIMER_LEAD).isoformat(), "second_timer": (second_at - TIMER_LEAD).isoformat(),
            "lapse_timer": (lapse_at - TIMER_LEAD).isoformat()}


def remind_first(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return _remind(ctx, data, data["watch"]["second_at"])


def remind_second(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return _remind(ctx, data, data["watch"]["lapse_at"])


def _grant_of(ctx: ServiceContext) -> Application:
    """The grant a watch instance watches (it always has one: start_watch sets it)."""
    grant = ctx.session.get(Application, ctx.application.original_id)
    if grant is None:
        raise WrongState(msg("转化期限监督没有对应的赋权申请"))
    return grant


def _remind(ctx: ServiceContext, data: dict[str, Any], until: str) -> dict[str, Any]:
    """Team and office are told how many days are left; not once a contract is recorded, and
    not when the next reminder is already due (a watch armed late or a short extension)."""
    session, watch = ctx.session, data["watch"]
    grant = _grant_of(ctx)
    now = clock.now()
    result: dict[str, Any] = {"round": watch["round"], "at": now.isoformat(), "sent": False}
    if converted(session, grant):
        return {**result, "skipped": RegistryState.CONVERTED}
    if now >= datetime.fromisoformat(until):
        return {**result, "skipped": "late"}
    days = math.ceil((datetime.fromisoformat(watch["lapse_at"]) - now) / timedelta(days=1))
    message = msg("{number}「{title}」的转化期限将于{day}届满，还有{days}天（赋权协议“{clause}”条款）",
                  number=grant.number, title=grant.title, day=watch["last_day"], days=days,
                  clause=clause(grant.kind))
    users = recipients(session, grant)
    notify.announce(session, users, grant.id, message, f"/applications/{grant.id}")
    audit.record(session, actor="system", action="conversion_reminder", unit_id=grant.unit_id,
                 application_id=grant.id, detail={"days": days, "last_day": watch["last_day"],
                                                  "recipients": [u.username for u in users]})
    return {**result, "sent": True, "days_left": days, "to": [u.username for u in users]}


def recipients(session: Session, grant: Application) -> list[User]:
    """The team (representative and members) and the unit's tech-transfer office."""
    team = session.execute(select(User).where(User.id.in_(grant.member_ids()), User.active.is_(True))
                           .order_by(User.id)).scalars().all()
    office = session.execute(select(User).join(RoleGrant).where(
        RoleGrant.role == RoleCode.TTO, (RoleGrant.unit_id == grant.unit_id) | RoleGrant.unit_id.is_(None),
        User.active.is_(True)).order_by(User.id)).scalars().unique().all()
    return [*team, *(u for u in office if u.id not in grant.member_ids())]


def check_lapse(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """At the lapse instant: converted → the watch ends; otherwise the office decides."""
    session = ctx.session
    grant = _grant_of(ctx)
    done = converted(session, grant)
    if not done:
        audit.record(session, actor="system", action="conversion_period_lapsed", unit_id=grant.unit_id,
                     application_id=grant.id, detail={"last_day": data["watch"]["last_day"]})
    return {"round": data["watch"]["round"], "at": clock.now().isoformat(), "converted": done}


def extend(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The office extended the period: the next round of reminders follows the new last day."""
    decision, watch = data[StepId.CONVERSION_LAPSE], data["watch"]
    new_last = date.fromisoformat(decision["new_last_day"])
    grant = _grant_of(ctx)
    by = ctx.actor.username if ctx.actor is not None else "system"
    audit.record(ctx.session, actor=by, action="conversion_period_extended", unit_id=grant.unit_id,
                 application_id=grant.id, detail={"from": watch["last_day"], "to": new_last.isoformat(),
                                                  "reason": decision["reason"]})
    return {"round": watch["round"], "previous_last_day": watch["last_day"], "last_day": new_last.isoformat(),
            "lapse_at": lapse_instant(new_last).isoformat(), "reason": decision["reason"], "by": by,
            "at": clock.now().isoformat()}


def supplementary(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A supplementary agreement extended the licence term (§三(二)2): its message interrupted the
    reminders or the lapse task, and the next round follows the agreement's last day."""
    agreement, watch = data[EXTENDED_VARIABLE], data["watch"]
    new_last = date.fromisoformat(agreement["new_last_day"])
    grant = _grant_of(ctx)
    audit.record(ctx.session, actor=agreement["by"], action="conversion_period_extended", unit_id=grant.unit_id,
                 application_id=grant.id, detail={"from": watch["last_day"], "to": new_last.isoformat(),
                                                  "agreement_number": agreement["number"]})
    return {"round": watch["round"], "previous_last_day": watch["last_day"], "last_day": new_last.isoformat(),
            "lapse_at": lapse_instant(new_last).isoformat(), "agreement_number": agreement["number"],
            "extension_id": agreement["application_id"], "by": agreement["by"], "at": clock.now().isoformat()}


def tell_not_rearmed(session: Session, grant: Application, extension: Application, new_last_day: str) -> None:
    """A watch started on a diagram older than the supplementary-agreement message keeps its old
    timers: the team and the office learn that the lapse task will come on the old day, where the
    office extends to the agreement's day by hand."""
    watch = watch_of(session, grant)
    message = msg("延长申请{number}已生效，许可期限延长至{day}；{watch}按旧版流程运行，未能自动顺延："
                  "原届满日到来时，请成果转化部门在“转化期限届满处理”中选择延长至{day}",
                  number=extension.number, day=new_last_day, watch=watch.number if watch else "")
    users = recipients(session, grant)
    notify.announce(session, users, grant.id, message, f"/applications/{grant.id}")
    audit.record(session, actor="system", action="conversion_watch_not_rearmed", unit_id=grant.unit_id,
                 application_id=grant.id, detail={"agreement_number": extension.number, "to": new_last_day,
                                                  "recipients": [u.username for u in users]})


def consequence(ctx: ServiceContext, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The agreement's consequence applies: the granted right goes back to the unit, and the
    registry entry returns from 已赋权 / 转化中 to 在库."""
    from workflows.reporting import registry
    session, decision = ctx.session, data[StepId.CONVERSION_LAPSE]
    grant = _grant_of(ctx)
    by = ctx.actor.username if ctx.actor is not None else "system"
    entry = _entry(session, grant)
    if entry is not None and entry.status in (RegistryState.GRANTED, RegistryState.CONVERTING):
        registry.record_lapse(session, entry, by, application_id=grant.id)
    audit.record(session, actor=by, action="conversion_consequence", unit_id=grant.unit_id,
                 application_id=grant.id, detail={"last_day": data["watch"]["last_day"],
                                                  "reason": decision["reason"]})
    return {"round": data["watch"]["round"], "reason": decision["reason"], "by": by, "at": clock.now().isoformat(),
            "registry_status": entry.status if entry is not None else None}


OPERATIONS = {"watch_schedule": schedule, "watch_remind_first": remind_first, "watch_remind_second": remind_second,
              "watch_check_lapse": check_lapse, "watch_extend": extend, "watch_consequence": consequence,
              "watch_supplementary": supplementary}
# The message a completed use-right extension sends its grant's watch, and where the watch keeps it.
EXTENDED_MESSAGE, EXTENDED_VARIABLE = "period_extended", "supplementary"


# --- the office's decision at the lapse -----------------------------------------------------

def check_actor(session: Session, actor: User, app: Application) -> None:
    """Only the unit's tech-transfer office decides on a lapsed period."""
    if not actor.has_role(RoleCode.TTO, app.unit_id):
        grant = session.get(Application, app.original_id)
        raise Forbidden(msg("转化期限届满的处理由成果转化部门决定（赋权协议“{clause}”条款）",
                            clause=clause(grant.kind if grant else KindCode.OWNERSHIP)))


def check_lapse_decision(app: Application, task_data: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Extend to a later last day with a reason, or apply the consequence with a reason."""
    name = clause(task_data.get("grant_kind", KindCode.OWNERSHIP))
    problems = []
    reason = (data.get("reason") or "").strip()
    if not reason:
        problems.append({"field": "reason", "message": msg("须说明理由（赋权协议“{clause}”条款）", clause=name)})
    payload = {"decision": data["decision"], "reason": reason}
    if data["decision"] == "extend":
        old, new = task_data["watch"]["last_day"], data.get("new_last_day") or ""
        today = clock.local_date(clock.now()).isoformat()
        if not new:
            problems.append({"field": "new_last_day", "message": msg(
                "延长转化期限须填写延长后的届满日（赋权协议“{clause}”条款）", clause=name)})
        elif new <= old:
            problems.append({"field": "new_last_day", "message": msg(
                "延长后的届满日须晚于原届满日{day}（赋权协议“{clause}”条款）", day=old, clause=name)})
        elif new < today:
            problems.append({"field": "new_last_day", "message": msg(
                "延长后的届满日不能早于今天（赋权协议“{clause}”条款）", clause=name)})
        payload["new_last_day"] = new
    if problems:
        raise ValidationFailed(problems)
    return payload


def check_not_lapsed(session: Session, grant: Application) -> None:
    """After the consequence was recorded, the grant no longer carries a conversion."""
    watch = watch_of(session, grant)
    if watch is not None and ((watch.summary or {}).get("watch_consequence")):
        raise WrongState(msg("转化期限已届满并已按赋权协议约定处理，不能再以该赋权登记成果转化（赋权协议“{clause}”条款）",
                             clause=clause(grant.kind)))


# --- what the grant's page shows ------------------------------------------------------------

def view(session: Session, grant: Application) -> dict[str, Any] | None:
    """Period end, next reminder, reminders sent and the lapse task's outcome, from the summary."""
    return view_of(watch_of(session, grant))


def view_of(watch: Application | None) -> dict[str, Any] | None:
    """`view` of a watch already read (the application page reads a grant's watch and its
    conversions in one statement)."""
    if watch is None:
        return None
    data = watch.summary or {}
    current = data.get("watch") or {}
    rnd = current.get("round")
    sent = [r for r in (data.get(StepId.REMIND_FIRST), data.get(StepId.REMIND_SECOND))
            if r and r.get("round") == rnd and r.get("sent")]
    now = clock.now()
    upcoming = [at for at in (current.get("first_at"), current.get("second_at"))
                if at and datetime.fromisoformat(at) > now]
    lapse = data.get("lapse_check") if (data.get("lapse_check") or {}).get("round") == rnd else None
    return {"application": watch, "last_day": current.get("last_day"), "lapse_at": current.get("lapse_at"),
            "next_reminder": clock.local_date(datetime.fromisoformat(upcoming[0])).isoformat() if upcoming else None,
            "first_days": current.get("first_days"), "second_days": current.get("second_days"),
            "sent": sent, "lapse": lapse, "decision": data.get(StepId.CONVERSION_LAPSE),
            "extension": data.get("watch_extension"), "consequence": data.get("watch_consequence"),
            "status": watch.status}

