"""The timer sweep (`engine.sweep_timers`, what `grants run` and `grants tick` call) reads the due
instances in batches, then fires each in its own transaction; on SQLite that transaction runs
SpiffWorkflow under a read snapshot and takes the write lock only for the writes, firing again
under the lock when another writer came first (issue 10). Each due timer fires exactly once, also
with two sweepers at once; a failing instance becomes an incident and does not stop the others."""
from __future__ import annotations

import threading

import pytest
from freezegun import freeze_time
from sqlalchemy import event, func, select, update

from tests.driver import Driver
from tests.engine.test_sweep_incidents import in_publicity
from workflows import db
from workflows.evidence import audit
from workflows.models import AuditEvent, HumanTask, Incident, PublicityNotice, User, WorkflowState
from workflows.process import engine, incidents, runtime


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def last_end(sessions):
    with sessions() as s:
        return s.execute(select(func.max(PublicityNotice.ends_at))).scalar_one()


def counts(sessions) -> tuple[int, int]:
    """Timer events in the audit logs, agreement tasks opened."""
    with sessions() as s:
        timers = s.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "timer")).scalar_one()
        tasks = s.execute(select(func.count()).select_from(HumanTask).where(HumanTask.bpmn_id == "agreement_terms")).scalar_one()
        return timers, tasks


def test_every_due_timer_fires_once_and_a_failing_instance_is_an_incident(drive):
    apps = in_publicity(drive, 3)
    bad = apps[1]
    drive.run(lambda s: s.execute(update(WorkflowState).where(WorkflowState.application_id == bad)
                                  .values(serialized="z1:broken")))
    with freeze_time(last_end(drive.sessions)):
        assert engine.sweep_timers(drive.sessions) == 2
        assert [drive.status(a) for a in apps] == ["agreement", "publicity", "agreement"]
        with drive.sessions() as s:
            incident = incidents.open_incident(s, bad)
            assert incident is not None and incident.attempts == 1 and incident.error
        assert engine.sweep_timers(drive.sessions) == 0  # held back until its retry time
        with drive.sessions() as s:
            assert incidents.open_incident(s, bad).attempts == 1
            assert audit.verify(s) == []
    assert counts(drive.sessions) == (2, 2)


def test_an_incident_whose_retry_succeeds_is_resolved_by_the_sweep(drive):
    [app_id] = in_publicity(drive, 1)
    with drive.sessions() as s:
        good = s.get(WorkflowState, app_id).serialized
    drive.run(lambda s: s.execute(update(WorkflowState).where(WorkflowState.application_id == app_id)
                                  .values(serialized="z1:broken")))
    ends = last_end(drive.sessions)
    with freeze_time(ends):
        assert engine.sweep_timers(drive.sessions) == 0
    with drive.sessions() as s:
        incident = incidents.open_incident(s, app_id)
        retry_at = incident.next_retry_at
    drive.run(lambda s: s.execute(update(WorkflowState).where(WorkflowState.application_id == app_id)
                                  .values(serialized=good)))  # the cause is fixed
    with freeze_time(retry_at):
        assert engine.sweep_timers(drive.sessions) == 1
    assert drive.status(app_id) == "agreement"
    with drive.sessions() as s:
        assert incidents.open_incident(s, app_id) is None
        assert s.get(Incident, incident.id).resolved_at is not None


def test_two_sweepers_at_once_fire_each_timer_once(drive):
    in_publicity(drive, 4)
    fired: list[int] = []
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        fired.append(engine.sweep_timers(drive.sessions))

    with freeze_time(last_end(drive.sessions)):
        threads = [threading.Thread(target=sweeper) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert sum(fired) == 4, fired
    assert counts(drive.sessions) == (4, 4)
    with drive.sessions() as s:
        assert s.execute(select(func.count()).select_from(Incident)).scalar_one() == 0
        assert audit.verify(s) == []


def test_a_writer_that_commits_while_the_instance_runs_unlocked_makes_it_fire_again_under_the_lock(
        drive, monkeypatch):
    """SQLite: the fire's read snapshot is older than another writer's commit, so its first write
    is refused; it is fired again holding the write lock, once, and is no incident. PostgreSQL:
    the state row is locked from the start and the other writer's row is another one."""
    [app_id] = in_publicity(drive, 1)
    advance = runtime.advance
    runs: list[int] = []

    def advance_while_someone_writes(wf, script_engine) -> None:
        advance(wf, script_engine)
        runs.append(1)
        if len(runs) == 1:  # another request commits meanwhile (a second connection of this thread)
            db.in_transaction(drive.sessions, lambda s: s.execute(
                update(User).where(User.username == "tto1").values(name="技术转移办公室")))

    monkeypatch.setattr(runtime, "advance", advance_while_someone_writes)
    with freeze_time(last_end(drive.sessions)):
        assert engine.sweep_timers(drive.sessions) == 1
    sqlite = drive.sessions.kw["bind"].dialect.name == "sqlite"
    assert len(runs) == (2 if sqlite else 1)
    assert drive.status(app_id) == "agreement"
    assert counts(drive.sessions) == (1, 1)
    with drive.sessions() as s:
        assert s.execute(select(func.count()).select_from(Incident)).scalar_one() == 0
        assert audit.verify(s) == []


def test_on_sqlite_the_write_lock_is_taken_after_spiffworkflow_ran(drive, monkeypatch):
    """The statements of a fire: reads, then SpiffWorkflow's load and run, then the first write
    (`BEGIN DEFERRED`: no lock until then). PostgreSQL locks the state row in its first read."""
    if drive.sessions.kw["bind"].dialect.name != "sqlite":
        pytest.skip("PostgreSQL locks rows, not the database")
    in_publicity(drive, 1)
    seen: list[str] = []
    event.listen(drive.sessions.kw["bind"], "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: seen.append(" ".join(statement.split())[:40]))
    advance = runtime.advance

    def marked(wf, script_engine) -> None:
        advance(wf, script_engine)
        seen.append("-- advanced")

    monkeypatch.setattr(runtime, "advance", marked)
    with freeze_time(last_end(drive.sessions)):
        assert engine.sweep_timers(drive.sessions) == 1
    first_write = next(i for i, s in enumerate(seen) if s.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")))
    assert first_write > seen.index("-- advanced"), seen
