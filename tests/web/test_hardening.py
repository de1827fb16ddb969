"""Issue 8 at the web boundary, each attack first: security headers, objectors' identity,
logout, other applications' filenames, bad input that used to give 500s, and the database
being unreachable (503 with Retry-After)."""
from __future__ import annotations

import io
import logging
import re

import pytest
from sqlalchemy import select

from tests.driver import example
from webapp import create_app
from workflows.documents import uploads
from workflows.models import Application, TaskDraft, Unit

from .conftest import form_fields, login, make_app, post_form, text_of

PDF = b"%PDF-1.4\n% hardening test\n%%EOF\n"
OBJECTOR = {"name": "赵强", "contact": "13800000000", "reason": "本人参与了该成果的样机研制，但未列入成果完成人名单。"}


# --- 1. security headers ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/publicity", "/api/v1/openapi.json", "/no-such-page",
                                  "/static/app.js"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'self'"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_have_no_inline_script_or_handler(client, driver):
    app_id = driver.to_publicity()
    login(client, "tto1")
    for path in ("/tasks", f"/applications/{app_id}", "/no-such-page", "/notifications"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "javascript:" not in html and " onclick=" not in html, path
        for tag in html.split("<script")[1:]:
            assert tag.lstrip().startswith("src="), (path, tag[:80])


def test_cookies_are_secure_when_configured(seeded_db, tmp_path):
    plain = make_app(seeded_db, tmp_path)
    assert not plain.config["SESSION_COOKIE_SECURE"]
    secure = make_app(seeded_db, tmp_path, SECURE_COOKIES="1")
    assert secure.config["SESSION_COOKIE_SECURE"] and secure.config["REMEMBER_COOKIE_SECURE"]
    https = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}",
                        "BASE_URL": "https://grants.example.cn"})
    assert https.config["SESSION_COOKIE_SECURE"]
    client = secure.test_client()
    response = client.post("/login", data={"username": "tto1", "password": "demo-pass-2026"})
    assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    for a in (plain, secure, https):
        a.extensions["grants_engine"].dispose()


# --- 2. objectors' identity -----------------------------------------------------------------

@pytest.fixture
def objected(client, driver):
    """An application in publicity with one objection filed by the public."""
    app_id = driver.to_publicity()
    html = client.get("/publicity").get_data(as_text=True)
    notice = int(re.search(r'href="/publicity/(\d+)"', html).group(1))
    assert client.post(f"/publicity/{notice}/objection", data=OBJECTOR).status_code == 302
    return app_id, driver.task_id(app_id, "handle_objection")


@pytest.mark.parametrize(("who", "sees"), [("tto1", True), ("auditor1", True), ("researcher1", False),
                                       ("researcher2", False), ("signer1", False), ("decider1", False)])
def test_only_the_office_and_allowed_auditors_see_who_objected(client, objected, who, sees):
    app_id, task = objected
    login(client, who)
    page = text_of(client.get(f"/tasks/{task}"))
    assert "本人参与了该成果的样机研制" in page  # the reason is what everyone involved must answer
    assert (OBJECTOR["name"] in page) is sees and (OBJECTOR["contact"] in page) is sees
    # The application page's publicity rounds name the objector on the same rule (access.may_see_objectors).
    assert (OBJECTOR["name"] in text_of(client.get(f"/applications/{app_id}"))) is sees


def test_a_unit_can_keep_objectors_from_its_auditors(client, driver, objected):
    _app_id, task = objected
    driver.run(lambda s: setattr(s.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one(),
                                 "auditors_see_objectors", False))
    login(client, "auditor1")
    assert OBJECTOR["contact"] not in text_of(client.get(f"/tasks/{task}"))


def test_the_api_never_gives_a_team_member_the_objector(app, objected):
    app_id, task = objected
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"username": "researcher2", "password": "demo-pass-2026"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    for path in (f"/api/v1/applications/{app_id}", f"/api/v1/tasks/{task}"):
        body = client.get(path, headers=headers).get_data(as_text=True)
        assert OBJECTOR["name"] not in body and OBJECTOR["contact"] not in body, path


# --- 5. logout ends the session ----------------------------------------------------------

def test_a_cookie_captured_before_logout_no_longer_works(client):
    login(client, "tto1")
    assert client.get("/tasks").status_code == 200
    stolen = client.get_cookie("session").value
    client.post("/logout")
    client.set_cookie("session", stolen)
    response = client.get("/tasks")
    assert response.status_code == 302 and "/login" in response.location


def test_a_password_change_ends_the_other_sessions(app):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "tto1")
    login(phone, "tto1")
    assert laptop.post("/account/password", data={"old_password": "demo-pass-2026", "new_password": "N3w-pass-2026!x",
                                                  "confirm_password": "N3w-pass-2026!x"}).status_code == 302
    assert laptop.get("/tasks").status_code == 200
    assert phone.get("/tasks").status_code == 302


# --- 6. other applications' filenames -------------------------------------------------------

@pytest.fixture
def foreign_doc(driver) -> tuple[int, int]:
    """A draft of researcher1, and a document of another team's application."""
    mine, theirs = driver.start(), driver.start(who="researcher9")
    return mine, driver.run(lambda s: uploads.accept(s, s.get(Application, theirs), "机密-另一团队的专利.pdf",
                                                     PDF, None).id)


def test_saving_a_draft_with_another_applications_document_is_refused(client, driver, foreign_doc):
    mine, doc_id = foreign_doc
    task = driver.task_id(mine, "draft")
    login(client, "researcher1")
    response = client.post(f"/tasks/{task}", data={"action": "save", "attachments.0.document_id": str(doc_id)})
    assert response.status_code == 422
    assert "机密-另一团队的专利.pdf" not in response.get_data(as_text=True)
    assert "机密-另一团队的专利.pdf" not in client.get(f"/tasks/{task}").get_data(as_text=True)


def test_a_stored_draft_naming_another_document_shows_no_filename(client, driver, foreign_doc):
    mine, doc_id = foreign_doc
    task = driver.task_id(mine, "draft")
    uid = driver.run(lambda s: driver.user(s, "researcher1").id)
    driver.run(lambda s: s.add(TaskDraft(task_id=task, user_id=uid, data={"attachments": [{"document_id": doc_id}]})))
    login(client, "researcher1")
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert "机密-另一团队的专利.pdf" not in page and f"#{doc_id}" in page


# --- 8. bad input gives 4xx, never 500 ------------------------------------------------------

def test_nul_bytes_are_refused_with_a_clear_message(client, objected, caplog):
    caplog.set_level(logging.DEBUG)
    assert client.get("/tasks?kind=a%00b").status_code == 400
    assert client.get("/publicity?unit=%00").status_code == 400
    response = client.post("/login", data={"username": "tto1\x00", "password": "x"})
    assert response.status_code == 400 and "空字符" in text_of(response)
    assert client.post("/api/v1/tokens", json={"username": "a\x00", "password": "b"}).status_code == 400
    notice = client.get("/api/v1/publicity").get_json()[0]["id"]
    nul = {**OBJECTOR, "reason": OBJECTOR["reason"] + "\x00"}
    assert client.post(f"/publicity/{notice}/objection", data=nul).status_code == 400
    assert client.post(f"/api/v1/publicity/{notice}/objections", json=nul).status_code == 400
    assert OBJECTOR["contact"] not in caplog.text and OBJECTOR["name"] not in caplog.text


@pytest.mark.parametrize("path", ["/api/v1/applications/110515059474924", "/applications/99999999999",
                                  "/api/v1/documents/9223372036854775808", "/notifications/99999999999/read"])
def test_ids_beyond_the_integer_range_are_not_found(client, path):
    login(client, "tto1")
    token = client.post("/api/v1/tokens", json={"username": "tto1", "password": "demo-pass-2026"}).get_json()
    method = client.post if path.endswith("/read") else client.get
    assert method(path, headers={"Authorization": f"Bearer {token['token']}"}).status_code == 404


@pytest.mark.parametrize("depth", [20_000, 100_000])
def test_deeply_nested_json_is_a_bad_request(client, objected, depth):
    body = "[" * depth + "]" * depth
    notice = client.get("/api/v1/publicity").get_json()[0]["id"]
    for path in ("/api/v1/tokens", f"/api/v1/publicity/{notice}/objections"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, path
        assert "嵌套" in response.get_json()["error"]


def test_the_engine_never_logs_sql_parameters(app):
    assert app.extensions["grants_engine"].hide_parameters


# --- 9. database unreachable ------------------------------------------------------------

@pytest.fixture
def down_app(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"})
    yield app
    app.extensions["grants_engine"].dispose()


def test_an_unreachable_database_is_503_with_retry_after(down_app):
    client = down_app.test_client()
    page = client.get("/publicity")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    assert "数据库暂时无法访问" in text_of(page)
    api = client.get("/api/v1/publicity")
    assert api.status_code == 503 and api.headers["Retry-After"] == "30" and "error" in api.get_json()
    assert client.post("/login", data={"username": "tto1", "password": "x"}).status_code == 503
    assert client.post("/api/v1/tokens", json=example("objection")).status_code == 503


def test_an_unreachable_database_with_a_session_cookie_is_503(down_app, seeded_db, tmp_path):
    live = make_app(seeded_db, tmp_path, SECRET_KEY="x")
    live_client = live.test_client()
    login(live_client, "tto1")
    client = down_app.test_client()
    client.set_cookie("session", live_client.get_cookie("session").value)
    response = client.get("/tasks", headers={"Accept": "text/html"})
    assert response.status_code == 503 and "Retry-After" in response.headers
    live.extensions["grants_engine"].dispose()


def test_uploads_in_objections_still_work(client, objected):
    notice = client.get("/api/v1/publicity").get_json()[0]["id"]
    response = client.post(f"/publicity/{notice}/objection", data={
        **OBJECTOR, "attachment": (io.BytesIO(PDF), "证明.pdf")})
    assert response.status_code == 302


# --- the same bad input on PostgreSQL, which refuses NUL and ids beyond INTEGER outright ------

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_app(request, seeded_db, tmp_path):
    if request.param == "sqlite":
        application = make_app(seeded_db, tmp_path)
    else:
        request.getfixturevalue("postgres_sessions")  # seeds the demo users
        application = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "x",
                                  "DATABASE_URL": request.getfixturevalue("postgres_url")})
    yield application
    application.extensions["grants_engine"].dispose()


def test_bad_input_is_4xx_on_both_databases(any_db_app):
    from tests.driver import Driver
    driver = Driver(any_db_app.extensions["grants_sessions"])
    app_id = driver.to_publicity()
    client = any_db_app.test_client()
    notice = client.get("/api/v1/publicity").get_json()[0]["id"]
    nul = {**OBJECTOR, "name": "赵\x00强"}
    assert client.post(f"/api/v1/publicity/{notice}/objections", json=nul).status_code == 400
    assert client.post(f"/publicity/{notice}/objection", data=nul).status_code == 400
    assert client.post("/login", data={"username": "\x00", "password": "x"}).status_code == 400
    token = client.post("/api/v1/tokens", json={"username": "tto1", "password": "demo-pass-2026"}).get_json()
    auth = {"Authorization": f"Bearer {token['token']}"}
    for path in ("/api/v1/applications/110515059474924", "/api/v1/applications/2147483648",
                 "/api/v1/tasks/%00", f"/api/v1/applications/{app_id}/documents?x=%00"):
        assert client.get(path, headers=auth).status_code in (400, 404), path
    login(client, "tto1")
    assert client.get("/applications/99999999999").status_code == 404
    assert client.get("/tasks?kind=%00").status_code == 400
    assert client.post("/applications/new", data={"unit_id": "99999999999", "kind": "ownership"}).status_code < 500
    draft = driver.start()
    client.post("/logout")
    login(client, "researcher1")
    task = driver.task_id(draft, "draft")
    saved = client.post(f"/tasks/{task}", data={"action": "save", "attachments.0.document_id": "99999999999"})
    assert saved.status_code == 422
    researcher = client.post("/api/v1/tokens", json={"username": "researcher1", "password": "demo-pass-2026"})
    done = client.post(f"/api/v1/tasks/{task}/complete", headers={"Authorization": f"Bearer {researcher.get_json()['token']}"},
                       json={**example("ownership_draft"), "attachments": [{"document_id": 2**40}]})
    assert done.status_code == 422
    huge = [("attachments.0.document_id", str(10**20))]
    assert post_form(client, f"/tasks/{task}", form_fields(example("ownership_draft")) + huge).status_code == 422
