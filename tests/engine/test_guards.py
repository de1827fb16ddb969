"""The engine guards itself (issue 9): every state-changing function of workflows/ checks its
caller, so the `grants` CLI, the API or another front end cannot skip a rule the admin pages
check. Each refusal leaves the database as it was; the CLI acts as the named actor system:cli."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import _seeded_sessions
from tests.driver import Driver
from workflows.errors import Forbidden
from workflows.models import AuditEvent, RoleGrant, Unit, User
from workflows.people import accounts, sso
from workflows.people.access import SystemActor
from workflows.process import engine

PASSWORD = "a-long-password-2026"


@pytest.fixture
def drive(sqlite_url) -> Driver:
    yield from (Driver(factory) for factory in _seeded_sessions(sqlite_url))


def _counts(drive: Driver) -> tuple[int, ...]:
    with drive.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (User, Unit, RoleGrant, AuditEvent))


def _unit_admin(drive: Driver) -> None:
    """An administrator of one unit only: the admin pages need one whose role spans every unit."""
    drive.run(lambda s: accounts.grant_role(s, drive.user(s, "tto1"), "admin", "SZDU", actor=SystemActor("tests")))


ADMIN_ACTIONS = {
    "create_user": lambda s, actor: accounts.create_user(s, "newbie", "新人", PASSWORD, actor=actor),
    "grant_role": lambda s, actor: accounts.grant_role(s, Driver.user(s, "researcher1"), "tto", "SZDU", actor=actor),
    "create_unit": lambda s, actor: accounts.create_unit(s, actor, "NEWU", "新单位"),
    "set_active": lambda s, actor: accounts.set_active(s, actor, Driver.user(s, "researcher2"), False),
    "set_password_sign_in": lambda s, actor: sso.set_password_sign_in(
        s, actor, s.execute(select(Unit).where(Unit.code == "SZDI")).scalar_one(), False),
}


def test_admin_operations_refuse_anyone_but_an_administrator_of_every_unit(drive):
    _unit_admin(drive)  # tto1 is also an administrator, of SZDU only
    before = _counts(drive)
    for who in ("tto1", "auditor1", "researcher1"):
        for name, action in ADMIN_ACTIONS.items():
            with pytest.raises(Forbidden):
                drive.run(lambda s, action=action, who=who: action(s, drive.user(s, who)))
            assert _counts(drive) == before, (who, name)
    with drive.sessions() as s:
        assert Driver.user(s, "researcher2").active
        assert s.execute(select(Unit).where(Unit.code == "SZDI")).scalar_one().password_sign_in


def test_admin_operations_run_for_the_administrator_and_are_audited_by_name(drive):
    for name, action in ADMIN_ACTIONS.items():
        drive.run(lambda s, action=action: action(s, drive.user(s, "admin")))
        with drive.sessions() as s:
            last = s.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
            assert last.actor == "admin", name


def test_a_system_actor_administers_and_is_named_in_the_audit_log_but_does_no_task(drive):
    cli = SystemActor("cli")
    drive.run(lambda s: accounts.create_user(s, "city9", "市审计", PASSWORD, roles=[("city_auditor", None)],
                                             actor=cli))
    with drive.sessions() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "create_user")
                          .order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
        assert event.actor == "system:cli" and event.detail["user"] == "city9"
    app_id = drive.start()
    task_id = drive.task_id(app_id, "draft", "researcher1")
    with pytest.raises(Forbidden):
        drive.run(lambda s: engine.claim_task(s, cli, task_id))


def test_an_auditor_changes_nothing_through_the_engine(drive):
    """The read-only rule is the engine's (the API only translates it): an auditor of the unit may
    neither start an application nor claim, save or complete a task of it."""
    app_id = drive.start()
    drive.run(lambda s: accounts.grant_role(s, drive.user(s, "auditor1"), "city_auditor", None,
                                            actor=SystemActor("tests")))
    task_id = drive.task_id(app_id, "draft", "researcher1")
    before = _counts(drive)
    attempts = [
        lambda s: engine.start_application(s, drive.user(s, "auditor1"), s.get(Unit, 1), "ownership"),
        lambda s: engine.claim_task(s, drive.user(s, "auditor1"), task_id),
        lambda s: engine.save_task_draft(s, drive.user(s, "auditor1"), task_id, {}),
        lambda s: engine.complete_task(s, drive.user(s, "auditor1"), task_id, {}),
        lambda s: engine.withdraw(s, drive.user(s, "auditor1"), app_id),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden, match="审计人员只能查看"):
            drive.run(attempt)
    assert _counts(drive) == before
