"""The SQLite server must not crash (issue 8, finding 13: SIGSEGV / free(): invalid pointer
with request threads loading rows while the sweep thread queries). The crash was not SQLite's:
two threads laying out documents with WeasyPrint at once (the sweep or a request rendering an
agreement, a notice or the signed annual report) share one Pango font map, which is not
thread-safe; the heap is corrupted and the process dies in whichever thread allocates next,
often one reading rows. Reproduced: 4 threads rendering for 20 s crashed 2 of 4 runs (SIGSEGV in
pango's line breaking, SIGABRT after GLib's "corrupted double-linked list"). Now one layout at a
time (workflows/documents/render.py). Also guarded: no SQLite connection serves two threads."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import event, text
from weasyprint import document as weasy_document

from workflows import db, documents
from workflows.evidence import keys, pki

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


def test_a_thread_reuses_its_own_idle_connection_and_two_sessions_never_share_one(sqlite_url):
    """The pool keeps each thread's idle connections for that thread: sequential sessions open
    one connection (and run the pragmas once), two sessions open at once get two, and another
    thread never gets this thread's."""
    engine = db.make_engine(sqlite_url)
    opened: list[int] = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: opened.append(id(dbapi_connection)))
    factory = db.session_factory(engine)

    def raw(session):
        session.execute(text("SELECT 1"))
        return session.connection().connection.dbapi_connection
    try:
        used = []
        for _ in range(10):
            with factory() as session:
                used.append(raw(session))
        assert len(opened) == 1 and len({id(c) for c in used}) == 1
        with factory() as first, factory() as second:
            assert raw(first) is not raw(second)
        other: list[object] = []

        def elsewhere():
            with factory() as session:
                other.append(raw(session))
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        assert other[0] is not used[0] and other[0] not in used
        with factory() as session:
            assert raw(session).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        engine.dispose()


def test_documents_are_laid_out_one_at_a_time(monkeypatch):
    """Three threads render at once; WeasyPrint's layout (where Pango runs) is never entered by
    two of them together. Counted around WeasyPrint's own Document._render, which still runs."""
    inside, most, guard = [0], [0], threading.Lock()
    real = weasy_document.Document._render

    def counted(*args, **kwargs):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.05)  # widen the window two unserialized renders would share
            return real(*args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1
    monkeypatch.setattr(weasy_document.Document, "_render", staticmethod(counted))
    start, errors = threading.Barrier(3), []

    def render():
        start.wait()
        try:
            documents.render_decision_record(_decision_ctx())
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=render) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and most[0] == 1, (errors, most[0])


def _decision_ctx() -> dict:
    from tests.test_documents import base, example
    return {**base(), "kind": "ownership", "draft": example("ownership_draft"), "review": example("review"),
            "decision": example("unit_decision"), "recorded_by": {"username": "decider1", "name": "黄建国"},
            "recorded_at": base()["generated_at"]}


def test_requests_and_the_sweep_together(tmp_path):
    """Bounded: 15 s of task/application readers, three clients downloading the signed annual
    report PDF (renders in several request threads at once) and the ticker on one SQLite file,
    in a child process so that a crash is a failed assertion here, not the end of the test run.
    Before the render lock this crashed the child; see the module docstring."""
    keys.init(tmp_path)  # the ticker signs audit checkpoints
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRANTS_INSTANCE=str(tmp_path), PYTHONFAULTHANDLER="1")
    url = f"sqlite:///{tmp_path / 'stress.db'}"
    proc = subprocess.run([sys.executable, "-m", "tests.sqlite_stress", url, "15", "4"], cwd=ROOT, env=env,
                          capture_output=True, timeout=300, check=False)
    out = proc.stdout.decode()[-2000:] + proc.stderr.decode()[-3000:]
    assert proc.returncode == 0, f"exit {proc.returncode}: {out}"




def test_first_signatures_at_once_make_one_unit_ca(tmp_path):
    """Two requests signing for a unit with no CA yet (waitress threads) get one CA, whose key
    on disk is the one its certificate names (before: each thread made its own, on one temp file)."""
    start, certs, errors = threading.Barrier(4), [], []

    def first():
        start.wait()
        try:
            certs.append(pki.ensure_unit_ca(tmp_path, "SZDU", "深圳示范大学"))
        except Exception as exc:
            errors.append(exc)
    threads = [threading.Thread(target=first) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    folder = pki.unit_dir(tmp_path, "SZDU")
    key = serialization.load_pem_private_key((folder / "ca.key.pem").read_bytes(), password=None)
    on_disk = x509.load_pem_x509_certificate((folder / "ca.cert.pem").read_bytes())
    assert not errors and len({c.serial_number for c in certs}) == 1, (errors, len(certs))
    assert certs[0].serial_number == on_disk.serial_number
    assert key.public_key().public_numbers() == on_disk.public_key().public_numbers()
