"""The conversion period watch (bpmn/conversion_watch.bpmn) under a shifted clock: reminders
exactly 90 and 30 days before the period lapses, the office's task at the lapse instant, nothing
one second early; extending re-arms the reminders; every refusal leaves everything as it was.
On SQLite and PostgreSQL, the state saved and reloaded between steps."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from tests.driver import Driver, example
from workflows import clock
from workflows.conversion import watch
from workflows.errors import Forbidden, ValidationFailed, WrongState
from workflows.models import (
    Application,
    ApplicationMember,
    AuditEvent,
    HumanTask,
    Notification,
    OutboxMail,
    RegistryEntry,
    Unit,
    User,
    WorkflowState,
)
from workflows.process import engine, specs

SIGNED = datetime(2027, 1, 10, 3, 0, tzinfo=UTC)          # 2027-01-10 11:00 in Shanghai
LAST_DAY = "2030-01-10"                                    # 36 months on (the agreement's 转化期限)
LAPSE = datetime(2030, 1, 10, 16, 0, tzinfo=UTC)           # 2030-01-11 00:00 in Shanghai
SECOND = timedelta(seconds=1)
TEAM = ("researcher1", "researcher2", "researcher3")


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def _grant(drive: Driver, months: int = 36, number: str = "SZDU-2027-0001") -> int:
    """A completed ownership grant as the walk leaves it (status, terms, registry entry), made
    directly: the walk itself is covered by tests/engine/test_conversion.py."""
    def action(s):
        unit = s.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        users = {u.username: u for u in s.execute(select(User).where(User.username.in_(TEAM))).scalars()}
        grant = Application(unit=unit, number=number, kind="ownership", status="completed", title="一种柔性传感器",
                            representative=users["researcher1"], closed_at=SIGNED, created_at=SIGNED,
                            members=[ApplicationMember(user_id=users[n].id) for n in TEAM],
                            summary={"agreement_terms": {"conversion_period_months": months}})
        s.add(grant)
        s.flush()
        s.add(RegistryEntry(unit_id=unit.id, title=grant.title, ip_type="patent", status="granted",
                            application_id=grant.id, grant_kind="ownership", registered_on="2026-05-01"))
        return grant.id
    return drive.run(action)


def _watch(drive: Driver, grant_id: int) -> Application:
    with drive.sessions() as s:
        return watch.watch_of(s, s.get(Application, grant_id))


def _start(drive: Driver, grant_id: int) -> Application:
    with freeze_time(SIGNED):
        drive.run(lambda s: engine.start_watch(s, s.get(Application, grant_id)))
    return _watch(drive, grant_id)


def _count(drive: Driver, model, *where) -> int:
    with drive.sessions() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _reminders(drive: Driver, grant_id: int) -> int:
    return _count(drive, AuditEvent, AuditEvent.application_id == grant_id, AuditEvent.action == "conversion_reminder")


def _tick_at(drive: Driver, moment: datetime) -> None:
    with freeze_time(moment):
        drive.tick()


def _at_lapse(drive: Driver) -> tuple[int, Application]:
    grant_id = _grant(drive)
    w = _start(drive, grant_id)
    for moment in (LAPSE - timedelta(days=90), LAPSE - timedelta(days=30), LAPSE):
        _tick_at(drive, moment)
    assert drive.steps(w.id) == ["conversion_lapse"]
    return grant_id, w


def _decide(drive: Driver, watch_id: int, who: str, data: dict, at: datetime = LAPSE) -> None:
    with freeze_time(at):
        drive.complete(watch_id, "conversion_lapse", who, data)


def test_reminders_at_exactly_90_and_30_days_and_the_task_at_the_lapse_instant(drive):
    grant_id = _grant(drive)
    w = _start(drive, grant_id)
    assert w.status == "watching" and w.number == "SZDU-2027-0001-W" and w.summary["watch"]["last_day"] == LAST_DAY
    assert datetime.fromisoformat(w.summary["watch"]["lapse_at"]) == LAPSE
    notices = _count(drive, Notification, Notification.application_id == grant_id)
    for days in (90, 30):
        due = LAPSE - timedelta(days=days)
        _tick_at(drive, due - SECOND)
        assert _count(drive, Notification, Notification.application_id == grant_id) == notices, days
        _tick_at(drive, due)
        with drive.sessions() as s:
            rows = s.execute(select(Notification).where(Notification.application_id == grant_id,
                                                        Notification.created_at == due)).scalars().all()
            users = {s.get(User, n.user_id).username for n in rows}
            assert users == {*TEAM, "tto1"}  # the team and the office; not the other unit's office
            assert all(f"还有{days}天" in n.message and LAST_DAY in n.message and "转化期限" in n.message for n in rows)
            assert s.execute(select(func.count()).select_from(OutboxMail).where(
                OutboxMail.to == "tto1@example.org", OutboxMail.subject.contains(f"还有{days}天"))).scalar_one() == 1
        notices = _count(drive, Notification, Notification.application_id == grant_id)
    assert _reminders(drive, grant_id) == 2
    _tick_at(drive, LAPSE - SECOND)
    assert drive.steps(w.id) == [] and drive.status(w.id) == "watching"
    _tick_at(drive, LAPSE)
    assert drive.steps(w.id) == ["conversion_lapse"] and drive.status(w.id) == "deciding"
    assert [t.role for t in drive.ready(w.id)] == ["tto"]
    assert _reminders(drive, grant_id) == 2  # each reminder once


def test_a_recorded_conversion_contract_ends_the_watch_without_reminders(drive):
    grant_id = _grant(drive)
    w = _start(drive, grant_id)
    with drive.sessions() as s:
        grant = s.get(Application, grant_id)
        s.add(Application(unit_id=grant.unit_id, number="SZDU-2027-0002", kind="conversion", status="completed",
                          representative_id=grant.representative_id, original_id=grant_id))
        s.commit()
    for moment in (LAPSE - timedelta(days=90), LAPSE - timedelta(days=30), LAPSE):
        _tick_at(drive, moment)
    assert _reminders(drive, grant_id) == 0
    assert drive.status(w.id) == "completed" and drive.steps(w.id) == []
    assert _watch(drive, grant_id).summary["lapse_check"]["converted"] is True


REFUSALS = [
    ("tto1", {"decision": "extend", "new_last_day": LAST_DAY, "reason": "中试进展顺利。"}, ValidationFailed,
     f"须晚于原届满日{LAST_DAY}（赋权协议“转化期限”条款）"),
    ("tto1", {"decision": "extend", "new_last_day": "2030-01-09", "reason": "中试进展顺利。"}, ValidationFailed,
     "须晚于原届满日"),
    ("tto1", {"decision": "extend", "reason": "中试进展顺利。"}, ValidationFailed, "须填写延长后的届满日（赋权协议“转化期限”条款）"),
    ("tto1", {"decision": "extend", "new_last_day": "2030-07-10", "reason": "  "}, ValidationFailed,
     "须说明理由（赋权协议“转化期限”条款）"),
    ("tto1", {"decision": "consequence", "reason": ""}, ValidationFailed, "须说明理由（赋权协议“转化期限”条款）"),
    ("researcher1", {"decision": "extend", "new_last_day": "2030-07-10", "reason": "团队自己延长。"}, Forbidden,
     "由成果转化部门决定（赋权协议“转化期限”条款）"),
    ("decider1", {"decision": "consequence", "reason": "收回。"}, Forbidden, "由成果转化部门决定"),
]


def _snapshot(drive: Driver, grant_id: int, watch_id: int) -> tuple:
    with drive.sessions() as s:
        return (s.get(WorkflowState, watch_id).version, s.get(Application, watch_id).summary,
                s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
                s.execute(select(func.count()).select_from(Notification)).scalar_one(),
                s.execute(select(RegistryEntry.status).where(RegistryEntry.application_id == grant_id)).scalar_one())


def test_every_refusal_cites_the_clause_and_changes_nothing(drive):
    """A refused decision changes nothing, so each refusal is tried on the very same state."""
    grant_id, w = _at_lapse(drive)
    before = _snapshot(drive, grant_id, w.id)
    for who, data, error, message in REFUSALS:
        with pytest.raises(error) as refused:
            _decide(drive, w.id, who, data)
        assert message in str(refused.value), (who, data)
        assert _snapshot(drive, grant_id, w.id) == before and drive.steps(w.id) == ["conversion_lapse"]


def test_extending_re_arms_the_reminders_for_the_new_last_day(drive):
    grant_id, w = _at_lapse(drive)
    _decide(drive, w.id, "tto1", {"decision": "extend", "new_last_day": "2031-01-10", "reason": "受让方中试顺利。"})
    new_lapse = datetime(2031, 1, 10, 16, 0, tzinfo=UTC)
    current = _watch(drive, grant_id)
    assert current.status == "watching" and current.summary["watch"]["round"] == 2
    assert current.summary["watch"]["last_day"] == "2031-01-10"
    assert current.summary["watch_extension"]["previous_last_day"] == LAST_DAY
    with drive.sessions() as s, freeze_time(LAPSE):
        assert s.get(WorkflowState, w.id).timer_due_at == new_lapse - timedelta(days=90, microseconds=1)
        view = watch.view(s, s.get(Application, grant_id))
    assert view["last_day"] == "2031-01-10" and view["next_reminder"] == "2030-10-13" and view["sent"] == []
    _tick_at(drive, new_lapse - timedelta(days=90) - SECOND)
    assert _reminders(drive, grant_id) == 2
    _tick_at(drive, new_lapse - timedelta(days=90))
    _tick_at(drive, new_lapse - timedelta(days=30))
    assert _reminders(drive, grant_id) == 4
    _tick_at(drive, new_lapse - SECOND)
    assert drive.steps(w.id) == []
    _tick_at(drive, new_lapse)
    assert drive.steps(w.id) == ["conversion_lapse"]


def test_the_consequence_returns_the_achievement_to_the_registry_and_ends_conversions(drive):
    grant_id, w = _at_lapse(drive)
    _decide(drive, w.id, "tto1", {"decision": "consequence", "new_last_day": "2031-01-10",
                                  "reason": "期满未转化，按协议约定由单位收回。"})
    assert drive.status(w.id) == "completed"
    with drive.sessions() as s:
        entry = s.execute(select(RegistryEntry).where(RegistryEntry.application_id == grant_id)).scalar_one()
        assert entry.status == "registered" and entry.grant_kind == "ownership"
        assert "new_last_day" not in watch.watch_of(s, s.get(Application, grant_id)).summary["conversion_lapse"]
    with freeze_time(LAPSE), pytest.raises(WrongState, match="已按赋权协议约定处理"):
        drive.start("conversion", "researcher1", original_number="SZDU-2027-0001")


def test_the_units_own_reminder_days(drive):
    with drive.sessions() as s:
        unit = s.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        unit.conversion_reminder_first_days, unit.conversion_reminder_second_days = 60, 7
        s.commit()
    grant_id = _grant(drive)
    _start(drive, grant_id)
    _tick_at(drive, LAPSE - timedelta(days=90))
    assert _reminders(drive, grant_id) == 0
    _tick_at(drive, LAPSE - timedelta(days=60))
    _tick_at(drive, LAPSE - timedelta(days=7) - SECOND)
    assert _reminders(drive, grant_id) == 1
    _tick_at(drive, LAPSE - timedelta(days=7))
    assert _reminders(drive, grant_id) == 2


def test_grants_completed_before_the_watch_get_theirs_on_the_next_sweep(drive):
    grant_id = _grant(drive)
    assert _watch(drive, grant_id) is None
    with freeze_time(SIGNED + timedelta(days=1)):
        drive.tick()
        drive.tick()
    w = _watch(drive, grant_id)
    assert w is not None and w.summary["watch"]["last_day"] == LAST_DAY
    assert _count(drive, Application, Application.kind == "watch") == 1


def test_a_period_of_months_ends_on_the_corresponding_day():
    assert watch.add_months(datetime(2027, 1, 31).date(), 1).isoformat() == "2027-02-28"
    assert watch.add_months(datetime(2027, 1, 10).date(), 36).isoformat() == "2030-01-10"
    assert watch.lapse_instant(datetime(2030, 1, 10).date()) == LAPSE
    assert clock.local_date(LAPSE).isoformat() == "2030-01-11"


def test_a_use_right_is_watched_to_the_end_of_its_licence_term(drive):
    grant = Application(kind="use_right", status="completed", summary={"agreement_terms": {
        "licence_start_date": "2027-01-01", "licence_term_years": 10}})
    with drive.sessions() as s:
        last_day, lapse_at = watch.period_of(s, grant)
        assert last_day.isoformat() == "2036-12-31" and clock.local_date(lapse_at).isoformat() == "2037-01-01"
        assert watch.period_of(s, Application(kind="use_right", summary={})) is None
    assert str(watch.clause("use_right")) == "成果转化义务"


def _use_right(drive: Driver, **terms) -> tuple[int, str]:
    """A use-right grant walked to completion (its watch starts with it)."""
    app_id = drive.to_publicity("use_right")
    drive.pass_publicity(app_id)
    drive.complete(app_id, "agreement_terms", "tto1", {**example("use_right_terms"), **terms})
    drive.sign_both(app_id)
    drive.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
    drive.complete(app_id, "complete_archive", "tto1", example("completion"))
    return app_id, drive.app(app_id).number


def _extension_to_terms(drive: Driver, number: str) -> int:
    ext = drive.start("extension", original_number=number)
    drive.complete(ext, "extension_request", "researcher1", {**example("extension_request"), "original_number": number})
    drive.complete(ext, "extension_review", "tto1", example("extension_review"))
    drive.decide(ext, step="extension_decision")
    return ext


def _extend(drive: Driver, number: str, new_end_date: str) -> int:
    """A use-right extension walked to completion: its supplementary agreement in force."""
    ext = _extension_to_terms(drive, number)
    drive.complete(ext, "supplementary_terms", "tto1", {**example("supplementary_terms"), "new_end_date": new_end_date})
    drive.sign_both(ext)
    drive.complete(ext, "complete_archive", "tto1", example("completion"))
    assert drive.status(ext) == "completed"
    return ext


def test_a_use_right_extension_in_force_moves_the_watch_to_its_new_last_day(drive):
    grant_id, number = _use_right(drive)
    before = _watch(drive, grant_id)
    assert before.summary["watch"]["last_day"] == "2036-12-31" and before.summary["watch"]["round"] == 1
    ext = _extend(drive, number, "2041-12-31")
    w = _watch(drive, grant_id)
    assert w.id == before.id and w.status == "watching"
    assert w.summary["watch"]["last_day"] == "2041-12-31" and w.summary["watch"]["round"] == 2
    assert w.summary["watch_extension"]["agreement_number"] == drive.app(ext).number
    assert w.summary["watch_extension"]["previous_last_day"] == "2036-12-31"
    with drive.sessions() as s:
        due = s.get(WorkflowState, w.id).timer_due_at
        assert clock.as_utc(due) == datetime(2041, 12, 31, 16, 0, tzinfo=UTC) - timedelta(days=90) - timedelta(microseconds=1)
        event = s.execute(select(AuditEvent).where(AuditEvent.application_id == grant_id,
                                                   AuditEvent.action == "conversion_period_extended")).scalar_one()
        assert event.detail == {"from": "2036-12-31", "to": "2041-12-31", "agreement_number": drive.app(ext).number}
        view = watch.view(s, s.get(Application, grant_id))
        assert view["last_day"] == "2041-12-31" and view["extension"]["agreement_number"] == drive.app(ext).number
    # the next round reminds 90 days before the new last day, not the old one
    _tick_at(drive, datetime(2036, 10, 3, 16, 0, tzinfo=UTC))
    assert _reminders(drive, grant_id) == 0
    _tick_at(drive, datetime(2041, 10, 2, 16, 0, tzinfo=UTC))
    assert _reminders(drive, grant_id) > 0


def test_a_supplementary_agreement_that_does_not_extend_is_refused(drive):
    grant_id, number = _use_right(drive)
    ext = _extension_to_terms(drive, number)
    before = _watch(drive, grant_id).summary
    with pytest.raises(ValidationFailed) as refused:
        drive.complete(ext, "supplementary_terms", "tto1", {**example("supplementary_terms"), "new_end_date": "2036-12-31"})
    assert refused.value.errors[0]["field"] == "new_end_date"
    assert "2036-12-31" in str(refused.value.errors[0]["message"])
    assert drive.steps(ext) == ["supplementary_terms"] and _watch(drive, grant_id).summary == before


def test_an_extension_after_the_lapse_replaces_the_offices_lapse_task(drive):
    grant_id, number = _use_right(drive, licence_start_date="2016-01-01")   # lapsed at the end of 2025
    drive.tick()
    lapsed = _watch(drive, grant_id)
    assert [t.bpmn_id for t in drive.ready(lapsed.id)] == ["conversion_lapse"]
    _extend(drive, number, "2031-12-31")
    w = _watch(drive, grant_id)
    assert drive.ready(w.id) == [] and w.status == "watching"
    assert w.summary["watch"]["last_day"] == "2031-12-31" and w.summary["watch_extension"]["previous_last_day"] == "2025-12-31"
    with drive.sessions() as s:
        states = dict(s.execute(select(HumanTask.bpmn_id, HumanTask.state).where(HumanTask.application_id == w.id)).all())
        assert states == {"conversion_lapse": "cancelled"}


def test_a_watch_that_ended_stays_ended_and_refuses_new_extensions(drive):
    grant_id, number = _use_right(drive, licence_start_date="2016-01-01")
    drive.tick()
    ext = _extension_to_terms(drive, number)          # filed while the office decides on the lapse
    _decide(drive, _watch(drive, grant_id).id, "tto1", {"decision": "consequence", "reason": "期满未转化，按协议约定处理。"},
            at=clock.now())
    assert _watch(drive, grant_id).status == "completed"
    drive.complete(ext, "supplementary_terms", "tto1", {**example("supplementary_terms"), "new_end_date": "2031-12-31"})
    drive.sign_both(ext)
    drive.complete(ext, "complete_archive", "tto1", example("completion"))
    ended = _watch(drive, grant_id)
    assert ended.status == "completed" and ended.summary["watch"]["last_day"] == "2025-12-31"
    with pytest.raises(WrongState) as refused:
        drive.start("extension", original_number=number)
    assert "成果转化义务" in str(refused.value)


def test_a_watch_of_the_older_diagram_runs_on_and_the_team_and_office_are_told(drive, tmp_path, monkeypatch):
    """Watches started before the diagram caught the supplementary agreement's message keep
    their version (tests/engine/test_versions_and_sweeps.py): nothing moves, people are told."""
    older = tmp_path / "bpmn"
    shutil.copytree(specs.BPMN_DIR, older)
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "conversion_watch_before_supplementary.bpmn",
                older / "conversion_watch.bpmn")
    current = specs.current
    monkeypatch.setattr(specs, "current", lambda process_id: specs.library(str(older))[process_id])
    grant_id, number = _use_right(drive)                  # its watch starts on the older diagram
    monkeypatch.setattr(specs, "current", current)
    before = _watch(drive, grant_id)
    with drive.sessions() as s:
        due_before = s.get(WorkflowState, before.id).timer_due_at
    ext = _extend(drive, number, "2041-12-31")
    w = _watch(drive, grant_id)
    assert w.summary["watch"]["last_day"] == "2036-12-31" and "watch_extension" not in w.summary
    with drive.sessions() as s:
        assert s.get(WorkflowState, w.id).timer_due_at == due_before
        event = s.execute(select(AuditEvent).where(AuditEvent.application_id == grant_id,
                                                   AuditEvent.action == "conversion_watch_not_rearmed")).scalar_one()
        assert event.detail["agreement_number"] == drive.app(ext).number and event.detail["to"] == "2041-12-31"
        told = set(s.execute(select(User.username).join(Notification, Notification.user_id == User.id).where(
            Notification.application_id == grant_id, Notification.template.like("延长申请%"))).scalars())
        assert {"researcher1", "tto1"} <= told
