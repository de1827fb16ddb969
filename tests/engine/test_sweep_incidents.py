"""One bad instance must not stall every timer (issue 8, finding 10): each due instance fires in
its own savepoint; a failing one is rolled back alone, recorded as an incident with its error,
left alone until its back-off has passed, and fires once an administrator retries it after
the cause is fixed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from tests.driver import Driver
from workflows.errors import Forbidden
from workflows.models import Incident, PublicityNotice, WorkflowState
from workflows.process import engine, incidents


def in_publicity(drive: Driver, count: int) -> list[int]:
    apps = []
    for i in range(count):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"INC-{i}")
        drive.consent_all(app_id)
        drive.review(app_id)
        drive.decide(app_id)
        apps.append(app_id)
    return apps


def poison(drive: Driver, app_id: int) -> str:
    """Break the stored instance the way a bad deployment or a hand edit would."""
    def action(s):
        state = s.get(WorkflowState, app_id)
        good, state.serialized = state.serialized, state.serialized[: len(state.serialized) // 2]
        return good
    return drive.run(action)


def restore(drive: Driver, app_id: int, serialized: str) -> None:
    def action(s):
        s.get(WorkflowState, app_id).serialized = serialized
    drive.run(action)


def incident_of(drive: Driver, app_id: int) -> Incident | None:
    with drive.sessions() as s:
        return incidents.open_incident(s, app_id)


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def test_one_poisoned_instance_among_several_due_does_not_stop_the_others(drive):
    apps = in_publicity(drive, 3)
    bad = apps[1]
    good_state = poison(drive, bad)
    with drive.sessions() as s:
        ends = s.execute(select(func.max(PublicityNotice.ends_at))).scalar_one()
    with freeze_time(ends):
        assert drive.tick() == 2
        assert [drive.status(a) for a in apps] == ["agreement", "publicity", "agreement"]
        incident = incident_of(drive, bad)
        assert incident is not None and incident.attempts == 1 and incident.error
        assert incident.next_retry_at > ends
        assert drive.tick() == 0  # held back until its retry time: not hammered every second
        assert incident_of(drive, bad).attempts == 1
    with freeze_time(incident.next_retry_at + timedelta(seconds=1)):
        assert drive.tick() == 0  # retried, still broken: one more attempt, a longer wait
        again = incident_of(drive, bad)
        assert again.attempts == 2 and again.next_retry_at - incident.next_retry_at > timedelta(minutes=1)
        restore(drive, bad, good_state)  # the cause is fixed
        drive.run(lambda s: engine.retry_incident(s, Driver.user(s, "admin"), again.id))
        assert drive.status(bad) == "agreement"
        assert incident_of(drive, bad) is None
        with drive.sessions() as s:
            assert s.get(Incident, again.id).resolved_at is not None


def test_a_failed_retry_is_counted_and_only_administrators_retry(drive):
    [app_id] = in_publicity(drive, 1)
    poison(drive, app_id)
    with drive.sessions() as s:
        ends = s.execute(select(func.max(PublicityNotice.ends_at))).scalar_one()
    with freeze_time(ends):
        drive.tick()
        incident = incident_of(drive, app_id)
        with pytest.raises(Forbidden):
            drive.run(lambda s: engine.retry_incident(s, Driver.user(s, "tto1"), incident.id))
        drive.run(lambda s: engine.retry_incident(s, Driver.user(s, "admin"), incident.id))
        assert incident_of(drive, app_id).attempts == 2
        assert drive.status(app_id) == "publicity"
