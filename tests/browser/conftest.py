"""A live server (werkzeug make_server in a thread, temp SQLite with demo data) and Debian's
Chromium driven by Playwright; screenshots go to tests/artifacts/screens/."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.driver import PASSWORD, Driver
from webapp import create_app
from workflows import db, demo

SCREENS = Path(__file__).resolve().parents[1] / "artifacts" / "screens"
# Every Content-Security-Policy refusal Chromium reports on any page of a test: the test fails.
CSP_VIOLATIONS: list[str] = []
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(autouse=True)
def _no_csp_violations():
    """The CSP (webapp/security.py) must break nothing: a refused script or style is a failure."""
    CSP_VIOLATIONS.clear()
    yield
    assert not CSP_VIOLATIONS, CSP_VIOLATIONS


def _watch_csp(message) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        CSP_VIOLATIONS.append(message.text)


@pytest.fixture
def live(tmp_path):
    """(base_url, app) of a server running in this process, CSRF on as in production."""
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test", "SMTP_PORT": 1})
    db.create_schema(app.extensions["grants_engine"])
    with app.extensions["grants_sessions"]() as session:
        demo.seed(session)
        session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(5)
    app.extensions["grants_engine"].dispose()


@pytest.fixture
def driver(live) -> Driver:
    return Driver(live[1].extensions["grants_sessions"])


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()


# Elements sticking out past the viewport's right (or left) edge; content inside a box that
# scrolls or clips horizontally (a wide table in .table-scroll) is that box's business.
_OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth, found = [];
  if (document.documentElement.scrollWidth > width + 1) {
    found.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
  }
  const clipped = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if ((box.width === 0 && box.height === 0) || clipped(el)) continue;
    if (box.right > width + 1 || box.left < -1) {
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
      found.push(`${name} ${Math.round(box.left)}..${Math.round(box.right)} (viewport ${width})`);
    }
  }
  return found.slice(0, 15);
}"""


def assert_no_horizontal_overflow(page) -> None:
    """Nothing on the page reaches past the viewport's edges, so a phone never scrolls sideways."""
    overflowing = page.evaluate(_OVERFLOWING)
    assert not overflowing, f"{page.url}: {overflowing}"


class Person:
    """One browser context = one person's cookies; helpers for the generic task form."""

    def __init__(self, browser, base: str, width: int = 1280):
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN")
        self.context.on("page", lambda page: page.on("console", _watch_csp))
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)

    def go(self, path: str):
        self.page.goto(self.base + path)
        return self.page

    def login(self, username: str, password: str = PASSWORD) -> Person:
        self.go("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("form.login-card button[type=submit]")
        # each person lands where their work is: tasks, or the audit view, or the registry
        self.page.wait_for_url(lambda url: "/login" not in url)
        return self

    def logout(self) -> None:
        self.page.click("details.usermenu summary")
        self.page.click("text=退出登录")
        self.page.wait_for_url("**/login")

    def fill(self, fields: dict[str, object]) -> None:
        """Set each named input the way a person would: type, pick, tick or choose."""
        for name, value in fields.items():
            target = self.page.locator(f'[name="{name}"]')
            first = target.first
            tag = first.evaluate("e => e.tagName.toLowerCase()")
            kind = first.get_attribute("type") or ""
            if tag == "select":
                first.select_option(str(value))
            elif kind == "radio":
                self.page.locator(f'[name="{name}"][value="{str(value).lower()}"]').check()
            elif kind == "checkbox":
                first.set_checked(bool(value))
            else:
                first.fill(str(value))

    def open_task(self, testid_step: str) -> None:
        """From My tasks, open the first task of that step."""
        self.go("/tasks")
        self.page.click(f'tr[data-task="{testid_step}"] a.btn-primary')
        self.page.wait_for_selector("form[data-task-form]")

    def submit(self) -> None:
        self.page.click('[data-testid="submit"]')
        self.page.wait_for_load_state()

    def shot(self, name: str) -> None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
