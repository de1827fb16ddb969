"""Every figure of the statistics and of the annual report, checked against an independent count
of a seeded year over two units, on SQLite and PostgreSQL."""
from __future__ import annotations

import contextlib
import io
from datetime import timedelta

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlalchemy import select

from tests import registry_seed
from tests.driver import Driver, example
from workflows import clock
from workflows.errors import Forbidden
from workflows.models import HumanTask, PublicityNotice, TaskDraft, Unit
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.reporting import annual_report, statistics

YEAR = registry_seed.YEAR


@pytest.fixture
def seeded(sessions):
    drive = Driver(sessions)
    drive.run(lambda s: accounts.create_user(s, "city1", "市科技局审计", "city-pass-2026", "", [("city_auditor", None)], actor=SystemActor("tests")))
    rows = drive.run(registry_seed.seed)
    entries = drive.run(registry_seed.seed_registry)
    return drive, rows, entries


def _compare(figures, want):
    for key in ("applications", "granted", "grants_per_month", "objections", "registry", "converted",
                "registry_movements"):
        assert figures[key] == want[key], key
    assert {s["step"]: (s["count"], s["median_days"], s["p90_days"]) for s in figures["steps"]} == want["steps"]
    assert figures["income"] == {"received": "0.00", "net": "0.00", "to_inventors": "0.00", "to_office": "0.00",
                                 "to_unit": "0.00"}


@pytest.mark.parametrize("unit", ["SZDU", "SZDI", None])
def test_statistics_match_an_independent_count(seeded, unit):
    drive, rows, entries = seeded
    want = registry_seed.expected(rows, entries, unit)
    assert sum(want["applications"].values()) > 10 and want["objections"]["upheld"] > 0  # the seed is not trivial
    with drive.sessions() as s:
        unit_id = s.query(Unit).filter_by(code=unit).one().id if unit else None
        _compare(statistics.compute(s, unit_id, YEAR), want)


def test_annual_report_tables_and_xlsx_match_the_count(seeded):
    drive, rows, entries = seeded
    want = registry_seed.expected(rows, entries, "SZDU")
    with drive.sessions() as s:
        report = annual_report.build(s, drive.user(s, "tto1"), "SZDU", YEAR)
    tables = {t["key"]: t for t in report["tables"]}
    values = lambda key: [r[1] for r in tables[key]["rows"]]  # noqa: E731
    moves = want["registry_movements"]
    assert values("registry_movements") == [moves["registered"], moves["granted"]["ownership"],
                                            moves["granted"]["use_right"], moves["converted"], moves["left"]]
    assert values("registry_states") == list(want["registry"].values())
    assert values("converted") == list(want["converted"].values())
    assert values("applications") == list(want["applications"].values())
    assert values("granted") == list(want["granted"].values())
    assert values("publicity") == [want["objections"]["notices"], want["objections"]["filed"],
                                   want["objections"]["upheld"]]
    assert [r[1] for r in tables["steps"]["rows"]] == [c for c, _m, _p in want["steps"].values()]
    # The list behind the registry figures: every entry registered, granted or leaving in the year.
    listed = {r[0] for r in tables["achievements"]["rows"]}
    assert listed == {e["id"] for e in entries if e["unit"] == "SZDU" and YEAR in
                      (e["registered_year"], e["granted_year"], e["left_year"])}
    in_year = {r["id"] for r in rows if r["unit"] == "SZDU" and (r["created"].year == YEAR or
                                                                   (r["closed"] and r["closed"].year == YEAR))}
    assert len(tables["application_list"]["rows"]) == len(in_year)
    book = load_workbook(io.BytesIO(annual_report.to_xlsx(report)))
    assert len(book.sheetnames) == len(report["tables"])
    for sheet, table in zip(book.worksheets, report["tables"], strict=True):
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        assert cells[0] == table["headers"]
        assert [[("" if v is None else v) for v in row] for row in cells[1:]] == \
            [[("" if v is None else v) for v in row] for row in table["rows"]]


def test_who_may_see_the_statistics(seeded):
    drive, _rows, _entries = seeded
    with drive.sessions() as s:
        szdu, szdi = (s.query(Unit).filter_by(code=c).one().id for c in ("SZDU", "SZDI"))
        for who in ("tto1", "decider1", "auditor1"):
            statistics.check_may_view(drive.user(s, who), szdu)
            with pytest.raises(Forbidden):
                statistics.check_may_view(drive.user(s, who), szdi)
            with pytest.raises(Forbidden):
                statistics.check_may_view(drive.user(s, who), None)
        for who in ("researcher1", "signer1"):
            with pytest.raises(Forbidden):
                statistics.check_may_view(drive.user(s, who), szdu)
        statistics.check_may_view(drive.user(s, "city1"), None)
        statistics.check_may_view(drive.user(s, "city1"), szdi)
        with pytest.raises(Forbidden):
            annual_report.build(s, drive.user(s, "auditor2"), "SZDU", YEAR)


def test_completing_a_task_stores_its_duration(sessions):
    """The statistics sort stored seconds (`duration_seconds`), written in the transaction that
    completes the task or closes the notice; a ready task and an open notice have none."""
    drive = Driver(sessions)
    start = clock.now()
    with freeze_time(start):
        app_id = drive.start()
    with freeze_time(start + timedelta(days=2, hours=3, seconds=1.25)):
        drive.draft(app_id)
    with drive.sessions() as s:
        rows = s.execute(select(HumanTask).where(HumanTask.application_id == app_id)).scalars().all()
        done = [r for r in rows if r.state == "completed"]
        assert [r.bpmn_id for r in done] == ["draft"]
        assert done[0].duration_seconds == pytest.approx(2 * 86400 + 3 * 3600 + 1.25, abs=1e-6)
        assert all(r.duration_seconds is None for r in rows if r.state == "ready")


def test_closing_a_notice_stores_its_duration(sessions):
    drive = Driver(sessions)
    notice_app = drive.to_publicity()
    with drive.sessions() as s:
        notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == notice_app)).scalar_one()
        assert notice.duration_seconds is None
        starts = notice.starts_at
    drive.pass_publicity(notice_app)
    with drive.sessions() as s:
        notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == notice_app)).scalar_one()
        assert notice.closed_at is not None
        assert notice.duration_seconds == pytest.approx((notice.closed_at - starts).total_seconds(), abs=1e-6)


def _direct_steps(session, unit_id, year):
    """The steps' figures computed straight from the rows, as before the duration bins: sort the
    stored seconds, take the nearest-rank median and p90, round to 0.01 day."""
    start, end = statistics.year_range(year)
    out = {}
    for key, _name, bpmn_ids in statistics.STEPS:
        if bpmn_ids:
            query = select(HumanTask.duration_seconds).where(
                HumanTask.bpmn_id.in_(bpmn_ids), HumanTask.completed_at >= start, HumanTask.completed_at < end)
            if unit_id is not None:
                query = query.where(HumanTask.unit_id == unit_id)
        else:
            query = select(PublicityNotice.duration_seconds).where(
                PublicityNotice.closed_at >= start, PublicityNotice.closed_at < end)
            if unit_id is not None:
                query = query.where(PublicityNotice.unit_id == unit_id)
        seconds = sorted(session.execute(query).scalars())
        n = len(seconds)
        at = lambda rank, seconds=seconds: round(seconds[rank - 1] / 86400, 2)  # noqa: E731
        out[key] = (n, at((n + 1) // 2) if n else None, at((9 * n + 9) // 10) if n else None)
    return out


def test_duration_bins_follow_every_writer(sessions):
    """Completions, a withdrawal (cancelled tasks), a notice closed by the sweep, a notice closed by
    an upheld objection, a task's completion moved to another year and one deleted: after each, the
    statistics' steps read from the bins equal a direct computation from the rows, and the bins
    equal a recount (`grants check-statistics`). A writer that skipped the bins fails here."""
    from workflows import models, publicity
    from workflows.process import engine

    drive = Driver(sessions)
    t0 = clock.now().replace(month=6, day=1, hour=4)
    hours = iter(range(1, 10_000))

    def later():
        return freeze_time(t0 + timedelta(hours=next(hours) * 7, minutes=next(hours) * 13, seconds=0.37))

    def check():
        with drive.sessions() as s:
            conn = s.connection()
            assert models.stored_duration_bins(conn) == +models.count_duration_bins(conn)
            assert models.stored_application_counts(conn) == +models.count_applications(conn)
            szdu = s.query(Unit).filter_by(code="SZDU").one().id
            for unit_id in (szdu, None):
                for year in (t0.year - 1, t0.year, t0.year + 1):
                    got = {r["step"]: (r["count"], r["median_days"], r["p90_days"])
                           for r in statistics.compute(s, unit_id, year)["steps"]}
                    assert got == _direct_steps(s, unit_id, year), (unit_id, year)

    with later():
        passed = drive.start()
    for step in (drive.draft, drive.consent_all, drive.review, drive.decide):
        with later():
            step(passed)
    check()
    drive.pass_publicity(passed)  # the sweep closes the notice
    with later():
        withdrawn = drive.start()
    with later():
        drive.draft_for_ip(withdrawn, "ZL202410000001.1")
    with later():
        drive.run(lambda s: engine.withdraw(s, drive.user(s, "researcher1"), withdrawn))
    check()
    with later():
        upheld = drive.start()
    with later():
        drive.draft_for_ip(upheld, "ZL202410000002.2")
    for step in (drive.consent_all, drive.review, drive.decide):
        with later():
            step(upheld)
    notice_id = drive.run(lambda s: s.query(PublicityNotice).filter_by(application_id=upheld, closed_at=None).one().id)
    with later():
        objection = drive.run(lambda s: publicity.file_objection(s, notice_id, example("objection"), "c").id)
    task = next(t for t in drive.ready(upheld, "handle_objection") if t.context.get("objection_id") == objection)
    with later():
        drive.run(lambda s: engine.complete_task(s, drive.user(s, "tto1"), task.id,
                                                 {"decision": "uphold", "reasoning": "成员名单有误。"}))
    check()

    def move_and_delete(s):
        done = s.query(HumanTask).filter(HumanTask.completed_at.is_not(None)).order_by(HumanTask.id).all()
        done[0].completed_at = done[0].completed_at + timedelta(days=400)  # another year, another bin
        s.expire(done[1], ["completed_at", "duration_seconds"])  # not loaded: the old bin is read back
        done[1].completed_at = done[1].created_at + timedelta(days=3, hours=5)
        s.query(TaskDraft).filter_by(task_id=done[2].id).delete()
        s.delete(done[2])
    drive.run(move_and_delete)
    check()

    def savepoint_rolled_back(s):
        task = s.query(HumanTask).filter(HumanTask.completed_at.is_not(None)).order_by(HumanTask.id).first()
        with contextlib.suppress(RuntimeError), s.begin_nested():
            task.completed_at = task.completed_at + timedelta(days=30)
            s.flush()
            raise RuntimeError
        s.query(HumanTask).filter(HumanTask.completed_at.is_not(None)).order_by(HumanTask.id).all()[-1] \
            .completed_at += timedelta(hours=30)
    drive.run(savepoint_rolled_back)
    check()

    def failed(s):
        task = s.query(HumanTask).filter(HumanTask.completed_at.is_not(None)).order_by(HumanTask.id).first()
        task.completed_at = task.completed_at + timedelta(days=60)
        s.flush()
        raise RuntimeError
    with pytest.raises(RuntimeError):
        drive.run(failed)
    check()
