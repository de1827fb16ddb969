"""同一成果不重复激励 (§三(一)3) at scale and under concurrency (issue 10): the draft check reads
the indexed claims table `ip_claims` instead of every open application's numbers, and the
database's unique index on live application claims refuses the second of two drafts naming the
same number at once, with the policy's own message, leaving that application in draft."""
from __future__ import annotations

import contextlib
import re
import threading

import pytest
from sqlalchemy import event, select

from tests.driver import Driver, example
from tests.engine.test_policy import snapshot
from workflows import db
from workflows.catalogue import KindCode, RegistryState, StatusCode
from workflows.errors import ValidationFailed
from workflows.grants import policy
from workflows.models import (
    Application,
    AuditEvent,
    IpClaim,
    RegistryEntry,
    User,
    claimed_numbers,
    ip_claim_differences,
)
from workflows.reporting import registry


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def _draft(numbers: list[str]) -> dict:
    data = example("ownership_draft")
    data["achievement"] = dict(data["achievement"], ip_numbers=numbers)
    return data


def _outcome(work) -> str:
    try:
        work()
        return "ok"
    except ValidationFailed as exc:
        fields = {e["field"]: e["message"] for e in exc.errors}
        assert "不重复激励" in fields.get("achievement.ip_numbers", ""), exc.errors  # noqa: PT017 (a thread's outcome)
        return "refused"


def test_two_drafts_naming_the_same_number_at_once_let_exactly_one_through(drive, monkeypatch):
    """Both requests read the claims before either writes (held at a barrier after the policy
    check): before the claims table both passed; now the unique index refuses the second."""
    first, second = drive.start(), drive.start()
    tasks = {app_id: drive.task_id(app_id, "draft") for app_id in (first, second)}
    before = {app_id: snapshot(drive, app_id) for app_id in (first, second)}
    barrier, real = threading.Barrier(2), policy.check_draft

    def check_draft(*args, **kwargs):
        real(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # SQLite: the other writer waits for the lock
            barrier.wait(timeout=1)
    monkeypatch.setattr(policy, "check_draft", check_draft)
    results: dict[int, str] = {}

    def submit(app_id: int) -> None:
        def work():
            with drive.sessions() as s:
                db.begin_write(s)
                from workflows.process import engine
                engine.complete_task(s, Driver.user(s, "researcher1"), tasks[app_id], _draft(["ZL-RACE-1"]))
                s.commit()
        results[app_id] = _outcome(work)
    threads = [threading.Thread(target=submit, args=(app_id,)) for app_id in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == ["ok", "refused"], results
    loser = next(app_id for app_id, outcome in results.items() if outcome == "refused")
    winner = first if loser == second else second
    after = snapshot(drive, loser)  # still in draft, nothing of it written (the winner's audit event aside)
    assert (after[:3], after[4:]) == (before[loser][:3], before[loser][4:])
    assert drive.status(loser) == "draft" and drive.steps(loser) == ["draft"]
    with drive.sessions() as s:
        assert s.get(Application, loser).ip_numbers == []
        assert not s.execute(select(AuditEvent.id).where(AuditEvent.application_id == loser,
                                                         AuditEvent.action == "complete_task")).first()
        holders = s.execute(select(IpClaim.application_id).where(IpClaim.ip_number == "ZL-RACE-1")).scalars().all()
        assert holders == [winner]
        assert ip_claim_differences(s.connection()) == []
    drive.complete(loser, "draft", "researcher1", _draft(["ZL-RACE-2"]))  # its own number still goes through
    assert drive.status(loser) != "draft"


def test_a_claimed_number_is_refused_and_released_by_refusal_and_withdrawal(drive):
    first = drive.start()
    drive.complete(first, "draft", "researcher1", _draft(["ZL-A"]))
    drive.consent_all(first)
    second = drive.start()
    before = snapshot(drive, second)
    with pytest.raises(ValidationFailed, match="不重复激励"):
        drive.complete(second, "draft", "researcher1", _draft(["ZL-B", "ZL-A"]))
    assert snapshot(drive, second) == before
    drive.review(first, "refuse")
    drive.complete(second, "draft", "researcher1", _draft(["ZL-B", "ZL-A"]))  # released by the refusal
    drive.run(lambda s: __import__("workflows.process.engine", fromlist=["engine"]).withdraw(
        s, Driver.user(s, "researcher1"), second))
    assert drive.status(second) == StatusCode.WITHDRAWN
    third = drive.start()
    drive.complete(third, "draft", "researcher1", _draft(["ZL-A", "ZL-B"]))  # released by the withdrawal
    with drive.sessions() as s:
        assert ip_claim_differences(s.connection()) == []


def _old_claimed(session, app: Application) -> set[str]:
    """The rule as steps._claimed_ip_numbers read it before the claims table (the reference)."""
    claimed: set[str] = set()
    for numbers in session.execute(select(RegistryEntry.ip_numbers).where(
            RegistryEntry.unit_id == app.unit_id, RegistryEntry.application_id != app.id,
            RegistryEntry.status != RegistryState.REGISTERED)).scalars():
        claimed.update(numbers or [])
    for numbers in session.execute(select(Application.ip_numbers).where(
            Application.unit_id == app.unit_id, Application.id != app.id, Application.kind != KindCode.EXTENSION,
            Application.status.notin_((StatusCode.REFUSED, StatusCode.WITHDRAWN)))).scalars():
        claimed.update(numbers)
    return claimed


def _assert_same_as_the_old_rule(drive: Driver) -> None:
    with drive.sessions() as s:
        assert ip_claim_differences(s.connection()) == []
        for app in s.execute(select(Application)).scalars():
            assert claimed_numbers(s, app.unit_id, app.id) == _old_claimed(s, app), app.number


def test_the_claims_equal_what_the_old_query_computes_after_a_mix_of_operations(drive):
    office = lambda s: Driver.user(s, "tto1")  # noqa: E731
    a, b, c = drive.start(), drive.start(), drive.start()
    drive.complete(a, "draft", "researcher1", _draft(["N1"]))
    drive.consent_all(a)
    drive.review(a, "refuse")                                   # refused: N1 released
    drive.complete(b, "draft", "researcher1", _draft(["N1", "N2"]))
    drive.consent_all(b)
    drive.review(b, "return")                                   # back to draft
    _assert_same_as_the_old_rule(drive)
    drive.complete(b, "draft", "researcher1", _draft(["N2", "N3"]))  # resubmitted: N1 released, N3 claimed
    drive.complete(c, "draft", "researcher1", _draft(["N1"]))
    drive.run(lambda s: __import__("workflows.process.engine", fromlist=["engine"]).withdraw(
        s, Driver.user(s, "researcher1"), c))                   # withdrawn: N1 released
    unlinked = drive.run(lambda s: registry.register(s, office(s), "SZDU", {
        "title": "在库成果", "ip_type": "patent", "ip_numbers": ["R1", "N3"], "funding_source": "fiscal",
        "inventors": ["researcher1"]}).id)                      # 在库 and unlinked: claims nothing
    _assert_same_as_the_old_rule(drive)

    def grant(s):  # a completed grant moves the matching entry (linked to b) to 已赋权
        app = s.get(Application, b)
        return registry.record_grant(s, app, {"ip_numbers": ["N3"], "title": app.title, "ip_type": "patent"},
                                     [], "tto1").id
    assert drive.run(grant) == unlinked
    _assert_same_as_the_old_rule(drive)
    with drive.sessions() as s:  # b's own entry does not stand in b's way; it does for anyone else
        assert "R1" not in claimed_numbers(s, s.get(Application, b).unit_id, b)
        assert "R1" in claimed_numbers(s, s.get(Application, b).unit_id, a)
    drive.run(lambda s: registry.edit(s, office(s), unlinked, {"ip_numbers": ["R2", "N3"]}))
    _assert_same_as_the_old_rule(drive)
    drive.run(lambda s: registry.record_lapse(s, s.get(RegistryEntry, unlinked), "tto1"))  # 在库 again
    _assert_same_as_the_old_rule(drive)
    d = drive.start()
    drive.complete(d, "draft", "researcher1", _draft(["R2", "N1"]))  # the lapsed entry's numbers are free
    _assert_same_as_the_old_rule(drive)


def _count_statements(drive: Driver, action) -> list[str]:
    statements: list[str] = []
    engine = drive.sessions.kw["bind"]

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return statements


def test_the_draft_check_reads_no_other_applications_numbers(drive):
    """The statements of a draft submit are the same in number for a unit with 1 and with 301
    other open applications, and none reads applications' or registry entries' numbers by unit."""
    warm = drive.start()
    drive.complete(warm, "draft", "researcher1", _draft(["W-0"]))
    small_app, big_app = drive.start(), drive.start()
    small = _count_statements(drive, lambda: drive.complete(small_app, "draft", "researcher1", _draft(["S-1"])))

    def crowd(s):
        rep = Driver.user(s, "researcher1")
        unit_id = s.get(Application, warm).unit_id
        s.add_all(Application(unit_id=unit_id, number=f"CROWD-{i}", kind=KindCode.OWNERSHIP,
                              status=StatusCode.IN_REVIEW, representative_id=rep.id, title=f"成果{i}",
                              ip_numbers=[f"C-{i}"]) for i in range(300))
    drive.run(crowd)
    big = _count_statements(drive, lambda: drive.complete(big_app, "draft", "researcher1", _draft(["B-1"])))
    assert len(big) == len(small), (small, big)
    by_unit = re.compile(r"ip_numbers.*\bFROM (applications|registry_entries)\b.*\.unit_id", re.S)
    assert not [s for s in big if by_unit.search(s)], big
    with drive.sessions() as s:
        assert ip_claim_differences(s.connection()) == []
        assert s.execute(select(User.id).where(User.username == "researcher1")).scalar_one()


def test_migration_0006_backfills_the_claims_and_keeps_the_oldest_of_duplicates(drive, database_url, capsys):
    """Built from the rows on upgrade; two open applications the old check-then-act let through with
    one number do not make it fail: the older keeps the claim, the newer is printed."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import update

    older, newer, refused_app = drive.start(), drive.start(), drive.start()
    drive.complete(older, "draft", "researcher1", _draft(["M-1", "M-2"]))
    drive.complete(newer, "draft", "researcher1", _draft(["M-3"]))
    drive.complete(refused_app, "draft", "researcher1", _draft(["M-4"]))
    drive.consent_all(refused_app)
    drive.review(refused_app, "refuse")
    engine_ = drive.sessions.kw["bind"]
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine_
    command.downgrade(cfg, "0005_stats")
    with engine_.begin() as conn:  # as a race before the claims table left it
        conn.execute(update(Application.__table__).where(Application.__table__.c.id == newer)
                     .values(ip_numbers=["M-3", "M-1"]))
    capsys.readouterr()
    command.upgrade(cfg, "head")
    printed = capsys.readouterr().out
    assert f"application {newer} left without a claim" in printed and "'M-1'" in printed, printed
    with drive.sessions() as s:
        rows = set(s.execute(select(IpClaim.ip_number, IpClaim.application_id, IpClaim.registry_entry_id)).all())
        assert rows == {("M-1", older, None), ("M-2", older, None), ("M-3", newer, None)}
        assert ip_claim_differences(s.connection()) == []  # the recount keeps the older one too
