"""Sign-in, lockout, sign-out, password change, CSRF and the language switch."""
from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD, login, make_app, text_of

PROTECTED = ["/tasks", "/applications", "/applications/new", "/applications/1", "/notifications",
             "/account/password", "/audit", "/audit/export.csv", "/admin/units", "/admin/users", "/admin/processes",
             "/documents/1", "/applications/1/diagram.bpmn", "/applications/1/evidence"]


@pytest.mark.parametrize("url", PROTECTED)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.location.startswith("/login")


@pytest.mark.parametrize("url", ["/tasks/abc/claim", "/applications/1/withdraw", "/applications/new",
                                 "/notifications/read-all", "/admin/units"])
def test_anonymous_posts_are_sent_to_login(client, url):
    response = client.post(url, data={})
    assert response.status_code == 302 and response.location.startswith("/login")


def test_public_board_needs_no_sign_in(client):
    response = client.get("/publicity")
    assert response.status_code == 200
    assert "职务科技成果赋权公示" in text_of(response)


def test_sign_in_then_out(client):
    response = login(client, "researcher1")
    assert response.location == "/"  # the home page, which sends a signed-in person on to /tasks
    assert client.get("/").location == "/tasks"
    page = client.get("/tasks")
    assert "李明" in text_of(page) and "我的待办" in text_of(page)
    client.post("/logout")
    assert client.get("/tasks").status_code == 302


def test_next_parameter_stays_on_site(client):
    response = client.post("/login?next=https://evil.example/", data={"username": "researcher1",
                                                                       "password": PASSWORD})
    assert response.status_code == 302 and "evil" not in response.location


def test_wrong_password_is_refused_with_the_same_message_as_unknown_user(client):
    bad = client.post("/login", data={"username": "researcher1", "password": "nope"})
    unknown = client.post("/login", data={"username": "nobody", "password": "nope"})
    assert bad.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in text_of(bad) and "用户名或密码错误" in text_of(unknown)


def test_lockout_after_five_failures_survives_the_refused_requests(client):
    for _ in range(5):
        client.post("/login", data={"username": "researcher2", "password": "wrong-password"})
    locked = client.post("/login", data={"username": "researcher2", "password": PASSWORD})
    assert locked.status_code == 403
    assert "锁定" in text_of(locked)


def test_password_change_validates_and_applies(client):
    login(client, "researcher3")
    mismatch = client.post("/account/password", data={"old_password": PASSWORD, "new_password": "a-new-pass-2026",
                                                       "confirm_password": "other"})
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in text_of(mismatch)
    short = client.post("/account/password", data={"old_password": PASSWORD, "new_password": "short",
                                                    "confirm_password": "short"})
    assert short.status_code == 422 and "新密码至少10位" in text_of(short)
    ok = client.post("/account/password", data={"old_password": PASSWORD, "new_password": "a-new-pass-2026",
                                                 "confirm_password": "a-new-pass-2026"})
    assert ok.status_code == 302
    assert client.get("/tasks").status_code == 200  # this session was renewed
    client.post("/logout")
    assert client.post("/login", data={"username": "researcher3", "password": PASSWORD}).status_code == 401
    login(client, "researcher3", "a-new-pass-2026")


def test_english_switch_translates_the_navigation(client):
    login(client, "tto1")
    chinese = text_of(client.get("/tasks"))
    assert "我的待办" in chinese and "全部申请" in chinese
    client.get("/locale/en?next=/tasks")
    english = text_of(client.get("/tasks"))
    assert "My tasks" in english and "All applications" in english and "Publicity" in english
    assert "我的待办" not in english
    client.get("/locale/zh_CN")
    assert "我的待办" in text_of(client.get("/tasks"))


def test_english_switch_on_the_public_board(client):
    client.get("/locale/en")
    assert "Publicity" in text_of(client.get("/publicity"))


@pytest.fixture
def csrf_client(seeded_db, tmp_path):
    app = make_app(seeded_db, tmp_path, WTF_CSRF_ENABLED=True)
    yield app.test_client()
    app.extensions["grants_engine"].dispose()


def _token(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_forms_without_the_csrf_token_are_refused(csrf_client):
    refused = csrf_client.post("/login", data={"username": "researcher1", "password": PASSWORD})
    assert refused.status_code == 400
    assert "安全令牌" in text_of(refused)
    token = _token(csrf_client.get("/login"))
    accepted = csrf_client.post("/login", data={"username": "researcher1", "password": PASSWORD, "csrf_token": token})
    assert accepted.status_code == 302
    # signed in, a state-changing form without its token is still refused
    assert csrf_client.post("/applications/new", data={"unit_id": 1, "kind": "ownership"}).status_code == 400
    assert csrf_client.post("/publicity/1/objection", data={"name": "x"}).status_code == 400


def test_a_busy_sqlite_database_answers_409_not_a_crash(tmp_path, sqlite_template, monkeypatch):
    """Another writer holds the database: the request is told to retry, nothing half-written."""
    import shutil
    import sqlite3

    from webapp import create_app
    from workflows import demo
    path = tmp_path / "busy.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("GRANTS_SQLITE_BUSY_SECONDS", "0.2")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "WTF_CSRF_ENABLED": False})
    try:
        with app.extensions["grants_sessions"]() as session:
            demo.seed(session)
            session.commit()
        other_writer = sqlite3.connect(path)
        other_writer.execute("BEGIN EXCLUSIVE")
        try:
            response = app.test_client().post("/api/v1/tokens", json={"username": "researcher1", "password": "bad"})
        finally:
            other_writer.rollback()
            other_writer.close()
        assert response.status_code == 409
        assert "刷新后重试" in response.get_json()["error"]
    finally:
        app.extensions["grants_engine"].dispose()
