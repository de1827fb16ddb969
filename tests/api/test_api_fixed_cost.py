"""What every request pays (issue 10), kept lean without changing what it answers: the task read
for an access check is one statement with the application's team, the security headers are
added once each (a view's own value wins), and the session cookie interface answers exactly as
Flask's own. No timings are asserted."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask.sessions import SecureCookieSessionInterface

from webapp import security
from webapp.cookies import SessionCookies
from workflows.process import engine

from .test_api_write_statements import counted


def test_the_task_read_takes_its_application_and_team_in_one_statement(api, app):
    created = api.start()
    api.draft(created["id"])  # a team of three
    consent = api.task_id(created["id"], "consent", "researcher2")
    factory = app.extensions["grants_sessions"]
    with factory() as s, counted(app) as statements:
        row = engine.get_task(s, consent)
        team = row.application.member_ids()
        unit = row.application.unit.code
    selects = [st for st in statements if st.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements
    assert len(team) == 3 and unit


def test_security_headers_are_added_once_and_a_views_own_value_wins(app):
    with app.test_request_context("/"):
        plain = security._security_headers(Response("x"))
        own = Response("x", headers={"content-security-policy": "default-src 'none'"})
        own = security._security_headers(own)
    for name, value in security.HEADERS.items():
        assert plain.headers.getlist(name) == [value]
    assert own.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
    for name, value in security.HEADERS.items():
        if name != "Content-Security-Policy":
            assert own.headers.getlist(name) == [value]


def _answer(app, interface, cookie: str | None, act: Callable[[Any], object] | None) -> tuple[list[str], str | None]:
    app.session_interface = interface
    with app.test_request_context("/", headers={"Cookie": f"session={cookie}"} if cookie else {}):
        s = interface.open_session(app, request)
        if act is not None:
            s.accessed = True  # as the `session` proxy marks it
            act(s)
        response = Response("x")
        interface.save_session(app, s, response)
    return response.headers.getlist("Set-Cookie"), response.headers.get("Vary")


def test_the_session_cookie_interface_answers_as_flasks_own(app):
    original = app.session_interface
    try:
        signed = _answer(app, SecureCookieSessionInterface(), None, lambda s: s.update(locale="en"))[0][0]
        cookie = signed.split(";")[0].split("=", 1)[1]
        cases = [(None, None), (None, lambda s: s.get("locale")), (None, lambda s: s.update(a=1)),
                 (cookie, None), (cookie, lambda s: s.get("locale")), (cookie, lambda s: s.clear()),
                 (cookie, lambda s: s.update(locale="zh_CN")), ("forged.value.x", lambda s: s.get("locale"))]
        for value, act in cases:
            assert _answer(app, SessionCookies(), value, act) == _answer(app, SecureCookieSessionInterface(), value, act)
    finally:
        app.session_interface = original


def test_a_starts_task_is_the_task_as_its_own_page_tells_it(api):
    created = api.start()
    detail = api.ok(api.get(f"/tasks/{created['task']['id']}", "researcher1"))
    assert created["task"] == {key: detail[key] for key in created["task"]}
    assert set(created["task"]) == {"id", "application_id", "number", "bpmn_id", "name", "lane", "role",
                                    "assignee", "state", "created_at"}
