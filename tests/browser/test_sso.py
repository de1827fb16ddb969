"""Single sign-on against a real OpenID Connect provider (the certified npm package oidc-provider,
started on loopback): a known subject lands signed in, an unknown one is refused."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from webapp import create_app
from workflows import db, demo

from .conftest import Person

pytestmark = pytest.mark.browser
PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID, CLIENT_SECRET = "grants-test", "grants-test-secret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sso_site(tmp_path):
    """(base_url, app) of the app configured for a provider that is really running."""
    assert (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(), "scripts/setup.sh installs oidc-provider"
    provider_port = _free_port()
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'sso.db'}", "SECRET_KEY": "sso-test", "SMTP_PORT": 1,
                      "OIDC_ISSUER": f"http://127.0.0.1:{provider_port}", "CAMPUS_CLIENT_ID": CLIENT_ID,
                      "CAMPUS_CLIENT_SECRET": CLIENT_SECRET})
    db.create_schema(app.extensions["grants_engine"])
    with app.extensions["grants_sessions"]() as session:
        demo.seed(session)
        session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    env = {**os.environ, "OIDC_PORT": str(provider_port), "OIDC_CLIENT_ID": CLIENT_ID,
           "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_REDIRECT_URI": f"{base}/login/sso/callback",
           "OIDC_ACCOUNTS": json.dumps({"researcher1": {"name": "李明"}})}
    log = tmp_path / "provider.log"
    with log.open("w") as out:
        provider = subprocess.Popen(["node", "provider.mjs"], cwd=PROVIDER_DIR, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)
    try:
        _wait_for("listening", log, provider)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield base, app
        server.shutdown()
        thread.join(5)
    finally:
        provider.terminate()
        provider.wait(10)
        app.extensions["grants_engine"].dispose()


def _wait_for(text: str, log: Path, process: subprocess.Popen, seconds: float = 20) -> None:
    """The provider prints dev-mode warnings first, then that it listens."""
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"oidc-provider did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def _sign_in_at_provider(person: Person, login: str) -> None:
    person.go("/login")
    person.page.click('[data-testid="sso"]')
    person.page.fill("input[name=login]", login)
    person.page.fill("input[name=password]", "any-password")
    person.page.click("button[type=submit]")
    person.page.click("button[autofocus]")  # the provider's consent page: Continue


def test_a_known_subject_is_signed_in_through_the_real_provider(browser, sso_site):
    base, _app = sso_site
    person = Person(browser, base)
    _sign_in_at_provider(person, "researcher1")
    person.page.wait_for_url("**/tasks")
    body = person.page.inner_text("body")
    assert "李明" in body and "我的待办" in body
    person.shot("sso-signed-in")
    person.close()


def test_an_unknown_subject_is_refused_and_not_signed_in(browser, sso_site):
    base, _app = sso_site
    person = Person(browser, base)
    _sign_in_at_provider(person, "stranger-007")
    person.page.wait_for_url("**/login/sso/callback**")
    assert "统一身份认证账户“stranger-007”未开通本系统权限" in person.page.inner_text("body")
    person.shot("sso-refused")
    person.go("/tasks")
    assert "/login" in person.page.url  # still signed out
    person.close()
