"""One pass of the background work (`grants run`'s sweep thread, `grants tick`, `grants worker`).

Parts, in order: due timers, overdue reminders, stale sign-in throttles, due mail, checkpoints of
the logs whose head moved. Each part that has work runs in its own transaction(s), so a failure of
one neither undoes nor stops the others. Whether a part has work is asked first, in one read-only
statement of index probes (`pending`): an idle sweep takes no write lock at all (on SQLite a
`BEGIN IMMEDIATE` per part queued every other writer behind it, five times a second, issue 10).
A part runs anyway when an earlier part of the same sweep did work, since that work may have made
mail or audit events the probe could not see.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from workflows import clock, db
from workflows.evidence import audit
from workflows.models import AuditLog, HumanTask, LoginThrottle
from workflows.people import accounts, notify

from . import engine


@dataclass(frozen=True)
class Pending:
    """Which parts of a sweep have something to do."""

    timers: bool
    reminders: bool
    throttles: bool
    mail: bool
    checkpoints: bool


def pending(session: Session, now: datetime | None = None) -> Pending:
    """One SELECT of five EXISTS, each an index range probe stopping at its first row."""
    now = now or clock.now()
    never, again = notify.reminders_due(now)
    row = session.execute(select(
        exists(engine.due_timers(now)),
        exists().where(*never).select_from(HumanTask) | exists().where(*again).select_from(HumanTask),
        exists().where(*accounts.stale_throttles(now)).select_from(LoginThrottle),
        exists(notify.due_mail(now).order_by(None)),
        exists().where(audit.heads_moved()).select_from(AuditLog),
    )).one()
    return Pending(*(bool(flag) for flag in row))


def sweep(sessions: sessionmaker[Session]) -> int:
    """Run the parts that have work; the number of timers fired."""
    engine.backfill_watches(sessions)
    with sessions() as probe:
        todo = pending(probe)
    fired = engine.sweep_timers(sessions) if todo.timers else 0
    reminded = _remind(sessions) if todo.reminders or fired else 0
    if todo.throttles:
        db.in_transaction(sessions, accounts.prune_throttles)
    if todo.mail or fired or reminded:
        notify.deliver_outbox(sessions)
    if todo.checkpoints or fired:
        _checkpoint(sessions)
    return fired


def _checkpoint(sessions: sessionmaker[Session]) -> int:
    """Sign each moved log in its own transaction (its head row locked for one signature, not
    all units' heads for all of them)."""
    with sessions() as probe:
        moved = list(probe.execute(select(AuditLog.log_id).where(audit.heads_moved())).scalars())
    return sum(db.in_transaction(sessions, partial(audit.checkpoint_moved, log_id=log_id)) for log_id in moved)


REMINDER_BATCH = 20   # reminders per transaction: ~1 ms each, the write lock held ~20 ms, not 500 × …
REMINDERS_A_SWEEP = 500


def _remind(sessions: sessionmaker[Session]) -> int:
    """At most REMINDERS_A_SWEEP reminders, REMINDER_BATCH to a transaction."""
    reminded = 0
    while reminded < REMINDERS_A_SWEEP:
        batch = db.in_transaction(sessions, partial(notify.remind_overdue, limit=REMINDER_BATCH))
        reminded += batch
        if batch < REMINDER_BATCH:
            break
    return reminded
