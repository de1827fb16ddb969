"""Deployment: links carry GRANTS_BASE_URL, production entry points refuse to start without it,
proxies and HTTPS are honoured, the demo catches its own mail; and two gunicorn servers with one
`grants worker` on one PostgreSQL lose, duplicate or double-send nothing."""
from __future__ import annotations

import email
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import request
from flask.cli import ScriptInfo
from freezegun import freeze_time
from pypdf import PdfReader
from sqlalchemy import func, select

from tests.driver import PASSWORD, Driver
from webapp import create_app, demo_mail
from webapp.cli import run, tick_once, worker
from workflows import clock, db, demo
from workflows import settings as engine_settings
from workflows.evidence import audit
from workflows.models import Application, AuditEvent, Document, HumanTask, OutboxMail, PublicityNotice

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://grants.example.edu.cn"


def _app(url, **config):
    return create_app({"TESTING": True, "DATABASE_URL": url, "AUDIT_KEY": "test-audit-key",
                       "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False, **config})


def _caught(folder: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


# -- addresses --------------------------------------------------------------------------------
def test_the_notice_pdf_and_the_mail_carry_the_configured_address(sqlite_url, tmp_path):
    app = _app(sqlite_url, BASE_URL=BASE + "/")
    catcher = demo_mail.start(tmp_path)
    engine_settings.configure(smtp_host=catcher.hostname, smtp_port=catcher.port)
    try:
        drive = Driver(app.extensions["grants_sessions"])
        drive.run(demo.seed)
        app_id = drive.to_publicity()
        assert tick_once(app) == 0  # delivers the outbox through real SMTP on loopback
        with drive.sessions() as s:
            notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == app_id)).scalar_one()
            pdf = s.get(Document, notice.document_id).content
            unsent = s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None)))
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
        assert f"{BASE}/publicity/{notice.id}" in text.replace("\n", "")
        assert "127.0.0.1" not in text
        bodies = [m.get_body(preferencelist=("plain",)).get_content() for m in _caught(tmp_path / "demo-mail")]
        assert unsent == 0 and bodies
        assert any(f"{BASE}/tasks/" in body for body in bodies)
        assert not any("127.0.0.1" in body for body in bodies)
    finally:
        catcher.stop()
        app.extensions["grants_engine"].dispose()


def test_run_and_worker_refuse_to_start_without_a_base_url(sqlite_url):
    app = _app(sqlite_url, BASE_URL="", DEMO=False)
    try:
        for command in (run, worker):
            result = CliRunner().invoke(command, [], obj=ScriptInfo(create_app=lambda: app))
            assert result.exit_code != 0
            assert "GRANTS_BASE_URL" in str(result.exception)
        result = CliRunner().invoke(worker, ["--once"], obj=ScriptInfo(create_app=lambda: _app(sqlite_url, BASE_URL=BASE)))
        assert result.exit_code == 0, result.output
        assert BASE in result.output
    finally:
        app.extensions["grants_engine"].dispose()


def test_the_gunicorn_entry_point_refuses_to_start_without_a_base_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTS_")}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", GRANTS_INSTANCE=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "import webapp.wsgi"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "GRANTS_BASE_URL" in done.stderr


def test_behind_a_proxy_the_forwarded_address_and_https_are_used(sqlite_url):
    app = _app(sqlite_url, BASE_URL=BASE, PROXY_COUNT=1)
    app.add_url_rule("/_probe", "probe", lambda: f"{request.scheme} {request.host} {request.remote_addr}")
    try:
        client = app.test_client()
        seen = client.get("/_probe", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "grants.example.edu.cn",
                                              "X-Forwarded-For": "203.0.113.9, 198.51.100.7"}).text
        assert seen == "https grants.example.edu.cn 198.51.100.7"  # one proxy: only its own entry is trusted
        response = client.post("/login", data={"username": "nobody", "password": "x"})
        cookies = response.headers.getlist("Set-Cookie")
        assert cookies and all("Secure" in c for c in cookies)
    finally:
        app.extensions["grants_engine"].dispose()
    plain = _app(sqlite_url, BASE_URL="http://127.0.0.1:5000")
    try:
        seen = plain.test_client().get("/login", headers={"X-Forwarded-For": "203.0.113.9"})
        assert plain.config.get("SESSION_COOKIE_SECURE") is False
        assert seen.status_code == 200
    finally:
        plain.extensions["grants_engine"].dispose()


# -- processes --------------------------------------------------------------------------------
class Processes:
    """Child processes with their logs; all stopped at the end."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path, self.env, self.children = tmp_path, env, []

    def start(self, name: str, argv: list[str], **env) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("wb")
        child = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT)
        self.children.append((name, child, log))
        return child

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{(self.tmp_path / f'{name}.log').read_text(errors='replace')[-3000:]}"
                         for name, _, _ in self.children)

    def stop(self) -> dict[str, int]:
        """SIGTERM to each; returns their exit codes (a clean shutdown is 0)."""
        for _, child, _ in self.children:
            child.terminate()
        codes = {}
        for name, child, log in self.children:
            try:
                codes[name] = child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                codes[name] = child.wait(5)
            log.close()
        return codes


def _env(url: str, tmp_path: Path, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTS_")}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=url, GRANTS_BASE_URL=BASE, GRANTS_AUDIT_KEY="test-audit-key",
               GRANTS_SECRET_KEY="two-servers", GRANTS_SMTP_HOST="127.0.0.1", GRANTS_SMTP_PORT=str(smtp_port),
               GRANTS_INSTANCE=str(tmp_path / "instance"))
    return env


def _http(method: str, url: str, body=None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_until(check, seconds: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{logs()}")


def _up(base: str) -> bool:
    try:
        return _http("GET", f"{base}/api/v1/openapi.json")[0] == 200
    except OSError:
        return False


@pytest.mark.postgres
def test_two_servers_and_one_worker_on_one_postgresql(postgres_url, postgres_sessions, tmp_path):
    drive = Driver(postgres_sessions)
    with freeze_time(clock.now() - timedelta(days=20)):  # notices whose term has already ended
        timed = []
        for n in range(3):
            app_id = drive.start()
            drive.draft_for_ip(app_id, f"ZL2023101{n:05d}.1")
            drive.consent_all(app_id)
            drive.review(app_id)
            drive.decide(app_id)
            timed.append(app_id)
    racing = []
    for n in range(4):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"ZL2024102{n:05d}.2")
        racing.append(app_id)
    consents = [(t.id, t.assignee_id) for a in racing for t in drive.ready(a, "consent")]
    assert len(consents) == 12

    catcher = demo_mail.start(tmp_path / "mailbox")
    procs = Processes(tmp_path, _env(postgres_url, tmp_path, catcher.port))
    ports = [demo_mail.free_port(), demo_mail.free_port()]
    servers = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        procs.start("server-a", gunicorn, GRANTS_BIND=f"127.0.0.1:{ports[0]}", GRANTS_WORKERS="2")
        procs.start("server-b", gunicorn, GRANTS_BIND=f"127.0.0.1:{ports[1]}", GRANTS_WORKERS="1")
        procs.start("worker", [sys.executable, "-m", "webapp.cli", "worker", "--interval", "0.3"])
        for base in servers:
            _wait_until(lambda base=base: _up(base), 60, f"{base} to answer", procs.logs)

        with postgres_sessions() as s:
            names = {u.id: u.username for u in (drive.user(s, n) for n in ("researcher1", "researcher2", "researcher3"))}
        tokens = {}
        for i, (uid, username) in enumerate(names.items()):
            status, body = _http("POST", f"{servers[i % 2]}/api/v1/tokens", {"username": username, "password": PASSWORD})
            assert status == 201, body
            tokens[uid] = body["token"]

        def complete(task_id: str, assignee: int, server: str) -> int:
            return _http("POST", f"{server}/api/v1/tasks/{task_id}/complete", {"agree": True, "comment": ""},
                         tokens[assignee])[0]

        # Every consent is sent to both servers at once: exactly one may win.
        with ThreadPoolExecutor(8) as pool:
            futures = {(task_id, server): pool.submit(complete, task_id, assignee, server)
                       for task_id, assignee in consents for server in servers}
            results = {key: future.result(timeout=60) for key, future in futures.items()}
        for task_id, _ in consents:
            codes = sorted(results[(task_id, server)] for server in servers)
            assert codes == [200, 409], (task_id, codes, procs.logs())

        def settled():
            with postgres_sessions() as s:
                statuses = {a: s.get(Application, a).status for a in timed}
                unsent = s.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.sent_at.is_(None)))
            return set(statuses.values()) == {"agreement"} and unsent == 0
        _wait_until(settled, 40, "the worker to fire the timers and send the mail", procs.logs)
        time.sleep(1.0)  # a few more sweeps: a timer or mail handled twice would show now

        with postgres_sessions() as s:
            completions = Counter(s.execute(select(AuditEvent.application_id).where(
                AuditEvent.action == "complete_task", AuditEvent.step == "consent",
                AuditEvent.application_id.in_(racing))).scalars())
            assert completions == dict.fromkeys(racing, 3)
            done = s.execute(select(HumanTask.state).where(HumanTask.id.in_([t for t, _ in consents]))).scalars()
            assert Counter(done) == {"completed": 12}
            assert {s.get(Application, a).status for a in racing} == {"in_review"}
            reviews = s.scalar(select(func.count()).select_from(HumanTask).where(
                HumanTask.application_id.in_(racing), HumanTask.bpmn_id == "review", HumanTask.state == "ready"))
            assert reviews == len(racing)
            timers = Counter(s.execute(select(AuditEvent.application_id).where(
                AuditEvent.action == "timer", AuditEvent.application_id.in_(timed))).scalars())
            assert timers == dict.fromkeys(timed, 1)
            notices = s.execute(select(PublicityNotice).where(PublicityNotice.application_id.in_(timed))).scalars().all()
            assert len(notices) == 3 and all(n.outcome == "passed" and n.closed_at for n in notices)
            outbox = Counter((m.to, m.subject, m.body.strip()) for m in s.execute(select(OutboxMail)).scalars())
            assert audit.verify(s) == []
        caught = Counter((str(m["To"]), str(m["Subject"]), m.get_body(preferencelist=("plain",)).get_content().strip())
                         for m in _caught(tmp_path / "mailbox" / "demo-mail"))
        assert caught == outbox  # every mail exactly once
        assert sum(outbox.values()) >= len(racing) + len(consents)
        assert any(f"{BASE}/tasks/" in body for _, _, body in caught)
        assert procs.stop() == {"server-a": 0, "server-b": 0, "worker": 0}  # SIGTERM ends each cleanly
    finally:
        procs.stop()
        catcher.stop()


def test_the_demo_catches_its_mail_and_uses_its_own_address(tmp_path, sqlite_template):
    """`grants run --demo` without GRANTS_BASE_URL or an SMTP server: links point at its host and
    port, and the mail lands in the loopback catcher."""
    import shutil
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)  # the per-test instance: it links the suite's keys
    shutil.copy(sqlite_template, instance / "grants.db")
    engine = db.make_engine(f"sqlite:///{instance / 'grants.db'}")
    db.in_transaction(db.session_factory(engine), demo.seed)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTS_") and k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), GRANTS_INSTANCE=str(instance))
    port = demo_mail.free_port()
    base = f"http://127.0.0.1:{port}"
    procs = Processes(tmp_path, env)
    try:
        procs.start("demo", [sys.executable, "-m", "webapp.cli", "run", "--demo", "--port", str(port)])
        _wait_until(lambda: _up(base), 60, "the demo to answer", procs.logs)
        status, body = _http("POST", f"{base}/api/v1/tokens", {"username": "researcher1", "password": PASSWORD})
        assert status == 201, body
        status, body = _http("POST", f"{base}/api/v1/applications", {"kind": "ownership"}, body["token"])
        assert status == 201, body
        _wait_until(lambda: list((instance / "demo-mail").glob("*.eml")), 20, "the demo mail", procs.logs)
        message = _caught(instance / "demo-mail")[0]
        assert f"{base}/tasks/" in message.get_body(preferencelist=("plain",)).get_content()
        assert "researcher1@example.org" in str(message["To"])
        assert "演示邮件由本机邮件捕获器" in (tmp_path / "demo.log").read_text()
    finally:
        procs.stop()


def test_a_server_process_dumps_every_threads_stack_on_a_native_crash(tmp_path):
    """Two server processes died in the cyclic GC (SIGSEGV in libpython) under the memory
    benchmark with no Python trace; the app turns faulthandler on so the next one leaves it."""
    code = ("import faulthandler, sys; from webapp import create_app; assert not faulthandler.is_enabled(); "
            "create_app(); print(faulthandler.is_enabled())")
    env = {**os.environ, "GRANTS_INSTANCE": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    env.pop("PYTHONFAULTHANDLER", None)
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
