"""Two sweepers at once send each mail once (issue 8, finding 7): rows are claimed (SKIP LOCKED
on PostgreSQL, a queued writer on SQLite) before sending, checked against a real SMTP server
(aiosmtpd) on loopback that is slow on purpose so the two really overlap; and finding due
mail reads the index of unsent rows, not the whole outbox."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from tests.test_notifications import _free_port
from workflows import clock, db, settings
from workflows.models import OutboxMail
from workflows.people import notify

ROOT = Path(__file__).resolve().parents[1]
MAILS = 12


class SlowInbox:
    def __init__(self):
        self.received: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.05)  # a slow server widens the window in which sweepers overlap
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def inbox():
    handler, port = SlowInbox(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def _fill_outbox(sessions) -> set[str]:
    addresses = {f"person{i}@example.org" for i in range(MAILS)}

    def action(s):
        s.add_all(OutboxMail(to=a, subject="测试", body="正文") for a in sorted(addresses))
    db.in_transaction(sessions, action)
    return addresses


@pytest.fixture
def outbox(database_url, inbox):
    settings.configure(smtp_host="127.0.0.1", smtp_port=inbox.port)  # reset after each test by conftest
    engine = db.make_engine(database_url)
    sessions = db.session_factory(engine)
    yield database_url, sessions, _fill_outbox(sessions)
    engine.dispose()


def _assert_each_sent_once(sessions, inbox, addresses) -> None:
    assert Counter(inbox.received) == Counter(addresses)  # every mail, none twice
    with sessions() as s:
        assert s.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one() == 0


def test_two_sweeper_threads_send_each_mail_once(outbox, inbox):
    _url, sessions, addresses = outbox
    barrier = threading.Barrier(2)

    def sweeper():
        barrier.wait(timeout=30)
        while notify.deliver_outbox(sessions, limit=3):
            pass
    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    _assert_each_sent_once(sessions, inbox, addresses)


def test_two_grants_tick_processes_send_each_mail_once(outbox, inbox, tmp_path):
    url, sessions, addresses = outbox
    env = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=url, GRANTS_SMTP_HOST="127.0.0.1",
               GRANTS_SMTP_PORT=str(inbox.port), GRANTS_INSTANCE=str(tmp_path / "instance"),
               GRANTS_AUDIT_KEY="test-audit-key")
    command = [sys.executable, "-c", "from webapp.cli import main; main()", "tick"]
    procs = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    _assert_each_sent_once(sessions, inbox, addresses)


def test_finding_due_mail_reads_the_unsent_index_only(sqlite_url):
    engine = db.make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            compiled = notify.due_mail(clock.now()).limit(50).compile(engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        assert "USING INDEX ix_outbox_due" in plan, plan
        assert "SCAN outbox" not in plan.replace("USING INDEX", ""), plan
    finally:
        engine.dispose()
