"""Every figure of the statistics and of the annual report, checked against an independent count
of a seeded year over two units, on SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from freezegun import freeze_time
from openpyxl import load_workbook
from sqlalchemy import select

from tests import registry_seed
from tests.driver import Driver
from workflows import clock
from workflows.errors import Forbidden
from workflows.models import HumanTask, PublicityNotice, Unit
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
