"""Failures change nothing; timers fire exactly at their due time; the audit chain exposes
any edit; concurrent completions of one task let exactly one through."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select, text

from tests.driver import Driver, example
from tests.engine.test_policy import snapshot
from workflows import audit, engine, services
from workflows.errors import Conflict
from workflows.models import HumanTask, PublicityNotice


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def test_an_exception_inside_a_step_leaves_everything_as_it_was(drive, monkeypatch):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id)
    before = snapshot(drive, app_id)

    def broken(ctx, data, params):
        raise RuntimeError("renderer crashed")
    monkeypatch.setitem(services.OPERATIONS, "record_decision", broken)
    with pytest.raises(Exception, match="renderer crashed"):
        drive.decide(app_id)
    assert snapshot(drive, app_id) == before
    monkeypatch.undo()
    drive.decide(app_id)
    assert drive.status(app_id) == "publicity"


def test_publicity_ends_at_its_due_time_and_not_a_second_earlier(drive):
    app_id = drive.to_publicity()
    with drive.sessions() as s:
        notice = s.query(PublicityNotice).filter_by(application_id=app_id).one()
        ends_at, starts_at = notice.ends_at, notice.starts_at
    assert ends_at - starts_at >= timedelta(days=15)
    with freeze_time(ends_at - timedelta(seconds=1)):
        assert drive.tick() == 0
        assert drive.status(app_id) == "publicity"
    with freeze_time(ends_at):
        assert drive.tick() == 1
        assert drive.status(app_id) == "agreement"


def test_tick_reads_only_due_instances(drive):
    waiting = drive.to_publicity()
    with drive.sessions() as s:
        due = s.query(PublicityNotice).filter_by(application_id=waiting).one().ends_at
    statements = []
    from sqlalchemy import event
    engine_ = drive.sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine_, "before_cursor_execute", listener)
    try:
        drive.tick()
    finally:
        event.remove(engine_, "before_cursor_execute", listener)
    assert any("timer_due_at <=" in s for s in statements)
    assert not any("FROM workflow_states" in s and "timer_due_at" not in s for s in statements)
    assert due > drive.app(waiting).created_at


def test_verify_audit_detects_edit_and_deletion(drive):
    app_id = drive.start()
    drive.draft(app_id)
    with drive.sessions() as s:
        assert audit.verify(s) == []
        count = s.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    for statement in ("UPDATE audit_events SET actor = 'someone' WHERE id = 1",
                      "UPDATE audit_events SET detail = '{}' WHERE id = 2",
                      f"DELETE FROM audit_events WHERE id = {count}",
                      "DELETE FROM audit_events WHERE id = 1"):
        with drive.sessions() as s:
            s.execute(text(statement))
            assert audit.verify(s), statement
            s.rollback()


def test_grants_verify_audit_command_fails_on_a_tampered_database(database_url, sessions, monkeypatch):
    from webapp import create_app
    drive = Driver(sessions)
    drive.draft(drive.start())
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "AUDIT_KEY": "test-audit-key"})
    runner = CliRunner()
    from webapp.cli import verify_audit
    try:
        result = runner.invoke(verify_audit, obj=_script_info(app))
        assert result.exit_code == 0, result.output
        with sessions() as s:
            s.execute(text("UPDATE audit_events SET actor = 'x' WHERE id = 1"))
            s.commit()
        result = runner.invoke(verify_audit, obj=_script_info(app))
        assert result.exit_code == 1
        assert "被修改" in result.output
    finally:
        app.extensions["grants_engine"].dispose()


def _script_info(app):
    from flask.cli import ScriptInfo
    return ScriptInfo(create_app=lambda: app)


@pytest.mark.postgres
def test_two_sessions_completing_one_task_exactly_one_wins(postgres_sessions):
    factory = postgres_sessions
    drive = Driver(factory)
    outcomes = []
    for round_ in range(3):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"ZL-{round_}")
        drive.consent_all(app_id)
        task_id = drive.task_id(app_id, "review")
        barrier = threading.Barrier(2)
        results: list[str] = []
        threads = [threading.Thread(target=_attempt, args=(factory, task_id, barrier, results)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == ["conflict", "ok"]
        assert drive.status(app_id) == "deciding"
        with factory() as s:
            assert s.execute(select(HumanTask).where(HumanTask.application_id == app_id,
                                                     HumanTask.bpmn_id == "unit_decision")).scalars().all()
            assert audit.verify(s) == []
        outcomes.append(results)
    assert len(outcomes) == 3


def _attempt(factory, task_id: str, barrier: threading.Barrier, results: list[str]) -> None:
    """One of two people pressing submit on the same review at the same moment."""
    with factory() as session:
        user = Driver.user(session, "tto1")
        barrier.wait()
        try:
            engine.complete_task(session, user, task_id, example("review"))
            session.commit()
            results.append("ok")
        except Conflict:
            session.rollback()
            results.append("conflict")
