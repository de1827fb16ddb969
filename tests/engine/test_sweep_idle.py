"""The sweep (workflows/process/sweep.py) asks "is anything due?" in one read before it writes (issue 10):
an idle sweep takes no write lock and writes nothing; each part's probe sees exactly the work that
part would do, and a sweep with work still does all of it (a fired timer's mail goes out and its
audit event is signed in the same sweep)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import event, func, select

from tests.driver import Driver
from workflows import clock, db, settings
from workflows.models import AuditCheckpoint, AuditLog, HumanTask, LoginThrottle, OutboxMail, PublicityNotice
from workflows.process import sweep

WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE", "SAVEPOINT")


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


@pytest.fixture
def statements(sessions) -> list[str]:
    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: seen.append(statement))
    return seen


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(WRITES) or "FOR UPDATE" in s.upper()]


def _nothing(sessions) -> sweep.Pending:
    with sessions() as s:
        return sweep.pending(s)


def _settled(drive: Driver) -> None:
    """Mail cannot go out here (port 1): let it wait a day; sign what the set-up logged."""
    db.in_transaction(drive.sessions, lambda s: s.execute(
        OutboxMail.__table__.update().values(next_attempt_at=clock.now() + timedelta(days=1))))
    sweep.sweep(drive.sessions)


def test_an_idle_sweep_reads_once_and_writes_nothing(drive, statements):
    drive.to_publicity()
    _settled(drive)
    assert _nothing(drive.sessions) == sweep.Pending(False, False, False, False, False)
    statements.clear()
    assert sweep.sweep(drive.sessions) == 0
    assert _writes(statements) == []
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1, statements


def test_a_due_timer_is_seen_and_its_sweep_sends_its_mail_and_signs_its_event(drive, statements, monkeypatch):
    app_id = drive.to_publicity()
    _settled(drive)
    sent: list[int] = []
    monkeypatch.setattr(sweep.notify, "deliver_outbox", lambda sessions: sent.append(1) or 0)
    with drive.sessions() as s:
        ends_at = s.execute(select(PublicityNotice.ends_at).where(PublicityNotice.application_id == app_id)).scalar_one()
        before = dict(s.execute(select(AuditLog.log_id, AuditLog.size)).all())
    with freeze_time(ends_at - timedelta(seconds=1)):
        assert _nothing(drive.sessions).timers is False
    with freeze_time(ends_at):
        assert _nothing(drive.sessions).timers is True
        assert sweep.sweep(drive.sessions) == 1
        # the new task's mail waits for a server here (delivery is replaced below)
        assert _nothing(drive.sessions) == sweep.Pending(False, False, False, True, False)
    assert drive.status(app_id) == "agreement"
    assert sent == [1]  # the new task's mail is offered to the mail server in the same sweep
    with drive.sessions() as s:
        grown = [log for log, size in s.execute(select(AuditLog.log_id, AuditLog.size)).all() if size > before[log]]
        assert len(grown) == 1  # the timer's event, signed in the same sweep
        assert s.execute(select(func.max(AuditCheckpoint.size)).where(AuditCheckpoint.log_id == grown[0])) \
            .scalar() == s.get(AuditLog, grown[0]).size


def test_each_probe_sees_its_own_work_and_the_sweep_does_it(drive):
    app_id = drive.start()
    _settled(drive)
    sessions = drive.sessions
    # mail whose time has come
    db.in_transaction(sessions, lambda s: s.execute(OutboxMail.__table__.update().values(next_attempt_at=clock.now())))
    assert _nothing(sessions) == sweep.Pending(False, False, False, True, False)
    db.in_transaction(sessions, lambda s: s.execute(
        OutboxMail.__table__.update().values(next_attempt_at=clock.now() + timedelta(days=1))))
    # a stale throttle, and one still locked (not stale)
    old = clock.now() - timedelta(days=2)
    db.in_transaction(sessions, lambda s: s.add_all([
        LoginThrottle(key="a" * 64, failures=1, updated_at=old),
        LoginThrottle(key="b" * 64, failures=9, updated_at=old, locked_until=clock.now() + timedelta(hours=1))]))
    assert _nothing(sessions) == sweep.Pending(False, False, True, False, False)
    sweep.sweep(sessions)
    with sessions() as s:
        assert s.execute(select(LoginThrottle.key)).scalars().all() == ["b" * 64]
    assert _nothing(sessions).throttles is False
    # a task waiting longer than the reminder period
    days = settings.get().reminder_after_days
    with sessions() as s:
        created = s.execute(select(func.min(HumanTask.created_at)).where(HumanTask.state == "ready")).scalar_one()
    with freeze_time(created + timedelta(days=days, seconds=1)):
        assert _nothing(sessions).reminders is True
        sweep.sweep(sessions)
        with sessions() as s:
            assert s.execute(select(func.count()).select_from(HumanTask).where(
                HumanTask.state == "ready", HumanTask.reminded_at.is_(None))).scalar_one() == 0
        pending = _nothing(sessions)
        assert (pending.reminders, pending.checkpoints) == (False, False)
    assert drive.status(app_id) == "draft"


def test_an_unsigned_head_is_seen(drive):
    drive.start()
    assert _nothing(drive.sessions).checkpoints is True
    sweep.sweep(drive.sessions)
    assert _nothing(drive.sessions).checkpoints is False


def test_reminders_go_out_in_short_transactions_and_all_of_them_in_one_sweep(drive, monkeypatch):
    app_id = drive.start()
    drive.draft(app_id)  # three consent tasks
    _settled(drive)
    batches: list[int] = []
    real = sweep.notify.remind_overdue

    def counted(session, limit=500):
        batches.append(real(session, limit=limit))
        return batches[-1]
    monkeypatch.setattr(sweep.notify, "remind_overdue", counted)
    monkeypatch.setattr(sweep, "REMINDER_BATCH", 1)
    with drive.sessions() as s:
        created = s.execute(select(func.max(HumanTask.created_at)).where(HumanTask.state == "ready")).scalar_one()
    with freeze_time(created + timedelta(days=settings.get().reminder_after_days, seconds=1)):
        sweep.sweep(drive.sessions)
    assert batches == [1, 1, 1, 0]  # one task a transaction, until none is left
    with drive.sessions() as s:
        assert s.execute(select(func.count()).select_from(HumanTask).where(
            HumanTask.state == "ready", HumanTask.reminded_at.is_(None))).scalar_one() == 0
