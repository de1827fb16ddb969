"""Every way an objection can be handled: during the term or after it, dismissed, dismissed with
a new round, or upheld, with one or two objections open. Each case shows the notice's outcome,
where the application goes, and that the other objection is neither lost nor changed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests.driver import Driver, SnapshotDriver, example
from workflows import publicity
from workflows.models import Objection, PublicityNotice

HANDLING = {"dismiss": "不成立。", "dismiss_restart": "修正后重新公示。", "uphold": "成员名单有误。"}

# (timing, decision, open objections) -> (notice outcomes by round, statuses of the objections, next steps)
CASES = {
    ("during", "dismiss", 1): ([None], ["dismissed"], []),
    ("during", "dismiss_restart", 1): (["restarted", None], ["dismissed"], []),
    ("during", "uphold", 1): (["upheld"], ["upheld"], ["review"]),
    ("during", "dismiss", 2): ([None], ["dismissed", "open"], ["handle_objection"]),
    ("during", "dismiss_restart", 2): (["restarted", None], ["dismissed", "superseded"], []),
    ("during", "uphold", 2): (["upheld"], ["upheld", "superseded"], ["review"]),
    ("after", "dismiss", 1): (["passed"], ["dismissed"], ["agreement_terms"]),
    ("after", "dismiss_restart", 1): (["restarted", None], ["dismissed"], []),
    ("after", "uphold", 1): (["upheld"], ["upheld"], ["review"]),
    ("after", "dismiss", 2): (["passed"], ["dismissed", "open"], ["handle_objection"]),
    ("after", "dismiss_restart", 2): (["restarted"], ["dismissed", "open"], ["handle_objection"]),
    ("after", "uphold", 2): (["upheld"], ["upheld", "open"], ["handle_objection"]),
}
# after the term, the second objection dismissed: where the application finally goes
AFTER_SECOND = {"dismiss": (["passed"], ["agreement_terms"]), "dismiss_restart": (["restarted", None], []),
                "uphold": (["upheld"], ["review"])}


@pytest.fixture
def published(database_url, snapshot):
    """A driver and an application in its publicity term, walked there once per backend and
    copied for each case (the walk renders and signs two PDFs; the cases differ only after)."""
    drive = SnapshotDriver(database_url, snapshot)
    yield drive, drive.to_publicity()
    drive.close()


def _snapshot(drive: Driver, app_id: int) -> tuple[list, list, list]:
    with drive.sessions() as s:
        notices = s.query(PublicityNotice).filter_by(application_id=app_id).order_by(PublicityNotice.id).all()
        objections = s.query(Objection).filter_by(application_id=app_id).order_by(Objection.id).all()
        return [n.outcome for n in notices], [o.status for o in objections], drive.steps(app_id)


def _file(drive: Driver, app_id: int, count: int) -> list[int]:
    notice_id = drive.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)
    return [drive.run(lambda s, i=i: publicity.file_objection(s, notice_id, example("objection"), f"c{i}").id)
            for i in range(count)]


def _handle(drive: Driver, app_id: int, objection_id: int, decision: str) -> None:
    task = [t for t in drive.ready(app_id, "handle_objection") if t.context.get("objection_id") == objection_id]
    assert task, drive.steps(app_id)
    from workflows.process import engine
    drive.run(lambda s: engine.complete_task(s, drive.user(s, "tto1"), task[0].id,
                                             {"decision": decision, "reasoning": HANDLING[decision]}))


@pytest.mark.parametrize(("timing", "decision", "count"), list(CASES))
def test_objection_outcome(published, timing, decision, count):
    drive, app_id = published
    ids = _file(drive, app_id, count)
    with drive.sessions() as s:
        ends_at = s.query(PublicityNotice).filter_by(application_id=app_id).one().ends_at
    moment = ends_at + timedelta(seconds=1) if timing == "after" else ends_at - timedelta(days=5)
    with freeze_time(moment):
        drive.tick()
        assert drive.steps(app_id) == ["handle_objection"] * count  # the term's end cancels nothing
        _handle(drive, app_id, ids[0], decision)
        outcomes, statuses, steps = CASES[(timing, decision, count)]
        assert _snapshot(drive, app_id) == (outcomes, statuses, steps)
        if timing == "after" and count == 2:
            assert drive.status(app_id) == "publicity"
            _handle(drive, app_id, ids[1], "dismiss")
            final_outcomes, final_steps = AFTER_SECOND[decision]
            assert _snapshot(drive, app_id) == (final_outcomes, ["dismissed" if decision == "dismiss"
                                                                 else statuses[0], "dismissed"], final_steps)
    with drive.sessions() as s:
        superseded = s.query(Objection).filter_by(application_id=app_id, status="superseded").all()
        assert all(o.reasoning and o.handled_at for o in superseded)  # closed on the record, with the reason
        first = s.get(Objection, ids[0])
        assert (first.decision, first.reasoning) == (decision, HANDLING[decision])


def test_upheld_after_the_term_overrides_passed_but_a_late_dismissal_does_not_undo_it(published):
    drive, app_id = published
    first, second = _file(drive, app_id, 2)
    with drive.sessions() as s:
        ends_at = s.query(PublicityNotice).filter_by(application_id=app_id).one().ends_at
    with freeze_time(ends_at + timedelta(days=1)):
        drive.tick()
        assert _snapshot(drive, app_id) == (["passed"], ["open", "open"], ["handle_objection"] * 2)
        _handle(drive, app_id, first, "dismiss")
        assert _snapshot(drive, app_id) == (["passed"], ["dismissed", "open"], ["handle_objection"])
        _handle(drive, app_id, second, "uphold")
        assert _snapshot(drive, app_id) == (["upheld"], ["dismissed", "upheld"], ["review"])
        assert drive.status(app_id) == "in_review"
