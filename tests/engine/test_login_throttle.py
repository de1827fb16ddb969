"""Sign-in throttling under real parallel requests (issue 8, findings 3 and 4): the counter is
taken atomically, so 39 wrong passwords at once get at most 5 password checks and the right
password during the lock is refused; a stranger's failures lock only their own address, and
unknown users cost a password check like real ones."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests.driver import PASSWORD
from workflows import clock, db
from workflows.errors import Forbidden, GrantError
from workflows.people import accounts


def _attempt(factory, username: str, password: str, client: str = "10.0.0.1") -> str:
    """What the sign-in views do: one writing transaction, committed even when refused."""
    with factory() as session:
        db.begin_write(session)
        try:
            accounts.authenticate(session, username, password, client=client)
            result = "ok"
        except Forbidden:
            result = "locked"
        except GrantError:
            result = "wrong"
        session.commit()
        return result


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Counts the real password checks (the real function still runs)."""
    seen: list[str] = []
    real = accounts._verify

    def counting(password_hash, password):
        seen.append(password)
        return real(password_hash, password)
    monkeypatch.setattr(accounts, "_verify", counting)
    return seen


def _in_parallel(n: int, work) -> list[str]:
    barrier, results = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait(timeout=30)
        results[i] = work(i)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


def test_parallel_wrong_passwords_get_at_most_five_checks(sessions, checks):
    results = _in_parallel(39, lambda i: _attempt(sessions, "researcher2", f"wrong-{i}"))
    assert len(checks) <= accounts.MAX_FAILED_LOGINS
    assert results.count("wrong") == len(checks) and results.count("locked") == 39 - len(checks)
    assert _attempt(sessions, "researcher2", PASSWORD) == "locked"  # the right one during the lock


def test_a_stranger_locks_only_their_own_address_and_the_lock_grows(sessions):
    for i in range(accounts.MAX_FAILED_LOGINS):
        assert _attempt(sessions, "researcher2", f"wrong-{i}", client="203.0.113.9") == "wrong"
    assert _attempt(sessions, "researcher2", PASSWORD, client="203.0.113.9") == "locked"
    assert _attempt(sessions, "researcher2", PASSWORD, client="192.0.2.1") == "ok"  # the owner elsewhere
    start = clock.now()
    with freeze_time(start + timedelta(minutes=1, seconds=1)):  # the first lock lasts one minute
        for i in range(accounts.MAX_FAILED_LOGINS):
            assert _attempt(sessions, "researcher2", f"again-{i}", client="203.0.113.9") == "wrong"
    with freeze_time(start + timedelta(minutes=2, seconds=2)):  # the second lasts two
        assert _attempt(sessions, "researcher2", PASSWORD, client="203.0.113.9") == "locked"
    with freeze_time(start + timedelta(minutes=3, seconds=2)):
        assert _attempt(sessions, "researcher2", PASSWORD, client="203.0.113.9") == "ok"


def test_the_username_ceiling_locks_for_a_while_only(sessions, monkeypatch):
    monkeypatch.setattr(accounts, "USERNAME_CEILING", 8)
    for i in range(8):
        assert _attempt(sessions, "researcher2", "wrong", client=f"198.51.100.{i // 4}") == "wrong"
    assert _attempt(sessions, "researcher2", PASSWORD, client="192.0.2.1") == "locked"
    with freeze_time(clock.now() + accounts.LOCKOUT + timedelta(seconds=1)):
        assert _attempt(sessions, "researcher2", PASSWORD, client="192.0.2.1") == "ok"


def test_unknown_users_are_checked_against_a_password_too(sessions, checks):
    assert _attempt(sessions, "nobody-here", "whatever") == "wrong"
    assert _attempt(sessions, "researcher1", "whatever") == "wrong"
    assert checks == ["whatever", "whatever"]  # the same work for both: no timing oracle


def test_idle_counters_are_forgotten_after_a_day(sessions):
    assert _attempt(sessions, "nobody-here", "guess") == "wrong"
    with freeze_time(clock.now() + timedelta(hours=23)):
        assert db.in_transaction(sessions, accounts.prune_throttles) == 0
    with freeze_time(clock.now() + timedelta(days=1, minutes=1)):
        assert db.in_transaction(sessions, accounts.prune_throttles) == 2
