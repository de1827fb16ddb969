"""The audit append runs last: `audit.record` queues an event in the transaction, the commit
appends the queue under the log head's lock (so the lock is held only for the append and the
commit), savepoints rolled back drop their events, and the logs stay exactly as verifiable."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from tests.driver import Driver
from workflows.evidence import audit
from workflows.models import AuditEvent, AuditLog, Unit


def _unit(sessions) -> int:
    with sessions() as s:
        return s.execute(select(Unit.id).order_by(Unit.id)).scalars().first()


def _actions(sessions, log_id: int, after: int = -1) -> list[str]:
    with sessions() as s:
        return list(s.execute(select(AuditEvent.action).where(AuditEvent.log_id == log_id, AuditEvent.seq > after)
                              .order_by(AuditEvent.seq)).scalars())


def _size(sessions, log_id: int) -> int:
    with sessions() as s:
        head = s.get(AuditLog, log_id)
        return head.size if head else 0


def test_events_are_appended_when_the_transaction_commits(sessions):
    drive = Driver(sessions)
    app_id = drive.start()
    unit = drive.app(app_id).unit_id
    size = _size(sessions, unit)
    with sessions() as s:
        count = s.execute(select(func.count(AuditEvent.id))).scalar_one()
        audit.record(s, actor="system", action="first", unit_id=unit)
        event = audit.record(s, actor="system", action="second", application_id=app_id)
        audit.record(s, actor="system", action="third", unit_id=unit, application_id=app_id)
        assert audit.pending(s) == 3
        assert s.execute(select(func.count(AuditEvent.id))).scalar_one() == count  # nothing written yet
        s.commit()
        assert audit.pending(s) == 0
        assert event.log_id == unit and event.seq == size + 1 and event.id is not None
    assert _actions(sessions, unit, size - 1) == ["first", "second", "third"]
    with sessions() as s:
        seqs = s.execute(select(AuditEvent.app_seq).where(AuditEvent.application_id == app_id)
                         .order_by(AuditEvent.seq)).scalars().all()
        assert seqs == list(range(1, len(seqs) + 1))
        assert s.get(AuditLog, unit).size == size + 3
        assert audit.verify(s) == []


def _failing_step(s, unit: int, action: str, inner: str | None = None) -> None:
    with s.begin_nested():
        audit.record(s, actor="system", action=action, unit_id=unit)
        if inner:
            with s.begin_nested():
                audit.record(s, actor="system", action=inner, unit_id=unit)
        raise RuntimeError("this step failed")


def test_a_savepoint_rolled_back_drops_only_its_own_events(sessions):
    unit = _unit(sessions)
    size = _size(sessions, unit)
    with sessions() as s:
        audit.record(s, actor="system", action="kept-before", unit_id=unit)
        with pytest.raises(RuntimeError):
            _failing_step(s, unit, "dropped", inner="dropped-inner")
        with s.begin_nested():
            audit.record(s, actor="system", action="kept-released", unit_id=unit)
            with pytest.raises(RuntimeError):
                _failing_step(s, unit, "dropped-nested")
        audit.record(s, actor="system", action="kept-after", unit_id=unit)
        s.commit()
    assert _actions(sessions, unit, size - 1) == ["kept-before", "kept-released", "kept-after"]
    with sessions() as s:
        assert audit.verify(s) == []


def test_a_rolled_back_transaction_appends_nothing_and_the_log_goes_on(sessions):
    unit = _unit(sessions)
    size = _size(sessions, unit)
    with sessions() as s:
        audit.record(s, actor="system", action="rolled-back", unit_id=unit)
        s.rollback()
        assert audit.pending(s) == 0
        audit.record(s, actor="system", action="committed", unit_id=unit)
        s.commit()
    with sessions() as s:  # a session closed without commit appends nothing either
        audit.record(s, actor="system", action="closed", unit_id=unit)
    assert _actions(sessions, unit, size - 1) == ["committed"]
    with sessions() as s:
        assert audit.verify(s) == []


def test_a_commit_with_a_savepoint_still_open_appends_too(sessions):
    unit = _unit(sessions)
    size = _size(sessions, unit)
    with sessions() as s:
        audit.record(s, actor="system", action="outer", unit_id=unit)
        s.begin_nested()
        audit.record(s, actor="system", action="inner", unit_id=unit)
        s.commit()
    assert _actions(sessions, unit, size - 1) == ["outer", "inner"]


def test_a_checkpoint_in_the_same_transaction_covers_the_queued_events(sessions):
    unit = _unit(sessions)
    with sessions() as s:
        audit.record(s, actor="system", action="reminder", unit_id=unit)
        body = audit.checkpoint(s, unit)
        assert body["size"] == s.get(AuditLog, unit).size
        s.commit()
    assert body["size"] == _size(sessions, unit)


@pytest.mark.postgres
def test_the_head_is_locked_only_from_the_append_to_the_commit(postgres_sessions):
    """One transaction has recorded an event of unit u and not committed; another appends to u's
    log and commits meanwhile without waiting (before, the first held u's head row lock from its
    record on). Then the first commits: both are in the log, numbered in commit order."""
    unit = _unit(postgres_sessions)
    size = _size(postgres_sessions, unit)
    first_recorded, second_done = threading.Event(), threading.Event()
    results: list[str] = []

    def first() -> None:
        with postgres_sessions() as s:
            audit.record(s, actor="system", action="slow", unit_id=unit)
            s.execute(select(Unit).where(Unit.id == unit)).scalar_one()  # and the transaction goes on
            first_recorded.set()
            second_done.wait(15)
            s.commit()
            results.append("first committed")

    def second() -> None:
        first_recorded.wait(15)
        with postgres_sessions() as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            audit.record(s, actor="system", action="fast", unit_id=unit)
            s.commit()
            results.append("second committed")
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == ["second committed", "first committed"]
    assert _actions(postgres_sessions, unit, size - 1) == ["fast", "slow"]
    with postgres_sessions() as s:
        assert audit.verify(s) == []
