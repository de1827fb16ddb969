"""The SQLite server must not crash (issue 8, finding 13: SIGSEGV / free(): invalid pointer
with request threads loading rows while the sweep thread queries). The cause was a pooled
sqlite3 connection opened with check_same_thread=False (SQLAlchemy's default for files), so a
connection, its cursors and its statement cache could be touched by two threads; now no
connection outlives its session (NullPool) and sqlite3 refuses any use from another thread."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import text

from workflows import db, keys

ROOT = Path(__file__).resolve().parents[1]


def test_a_connection_cannot_be_used_from_another_thread(sqlite_url):
    engine = db.make_engine(sqlite_url)
    try:
        with db.session_factory(engine)() as session:
            session.execute(text("SELECT 1"))
            raw = session.connection().connection.dbapi_connection
            errors = []

            def elsewhere():
                try:
                    raw.execute("SELECT 1")
                except Exception as exc:
                    errors.append(exc)
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
            assert errors and "thread" in str(errors[0]).lower()
    finally:
        engine.dispose()


def test_sessions_in_two_threads_never_share_a_connection(sqlite_url):
    engine = db.make_engine(sqlite_url)
    factory, seen, alive = db.session_factory(engine), [], []

    def use():
        for _ in range(20):
            with factory() as session:
                session.execute(text("SELECT 1"))
                raw = session.connection().connection.dbapi_connection
                alive.append(raw)  # kept alive, so no later connection can reuse its id()
                seen.append((threading.get_ident(), id(raw)))
    try:
        threads = [threading.Thread(target=use) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        engine.dispose()
    owners: dict[int, set[int]] = {}
    for thread_id, conn_id in seen:
        owners.setdefault(conn_id, set()).add(thread_id)
    assert all(len(threads) == 1 for threads in owners.values())


def test_requests_and_the_sweep_together_for_twenty_seconds(tmp_path):
    """Bounded: 20 s of six clients and the ticker on one SQLite file, in a child process so
    that a crash is a failed assertion here, not the end of the test run."""
    keys.init(tmp_path)  # the ticker signs audit checkpoints
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRANTS_INSTANCE=str(tmp_path))
    url = f"sqlite:///{tmp_path / 'stress.db'}"
    proc = subprocess.run([sys.executable, "-m", "tests.sqlite_stress", url, "20", "6"], cwd=ROOT, env=env,
                          capture_output=True, timeout=240, check=False)
    out = proc.stdout.decode()[-2000:] + proc.stderr.decode()[-3000:]
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}"


