"""Lists that scale: pages of 50 (or `per_page`), sorted, searchable, with the total; the API
answers a JSON array with X-Total-Count and Link; and every list page issues the same number of
SQL queries whatever the number of rows (counted with a before_cursor_execute listener)."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import event, select

from tests.driver import PASSWORD
from workflows import clock
from workflows.models import Application, Notification, PublicityNotice, User
from workflows.process import queries

from .conftest import login, text_of


@contextmanager
def counted(app):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
    engine = app.extensions["grants_engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _start(driver, n: int) -> list[int]:
    """n applications by researcher1, one second apart (each has a ready draft task)."""
    ids = []
    base = clock.now()
    for i in range(n):
        with freeze_time(base + timedelta(seconds=i)):
            ids.append(driver.start())
    return ids


def _numbers(response) -> list[str]:
    return re.findall(r">\s*(SZDU-\d{4}-\d{4})\s*<", response.get_data(as_text=True))


def _notices(driver, ids: list[int]) -> None:
    """Board rows as the read model holds them (the notice summary is written when it opens)."""
    with driver.sessions() as s:
        now = clock.now()
        for i, app_id in enumerate(ids):
            app = s.get(Application, app_id)
            app.title = f"成果{i:02d}"
            s.add(PublicityNotice(application_id=app_id, unit_id=app.unit_id, starts_at=now - timedelta(days=1),
                                  ends_at=now + timedelta(days=10 + i), last_day="2099-01-01",
                                  summary={"draft": {"achievement": {"title": f"成果{i:02d}"}}}))
        s.commit()


def _token(client, user: str) -> dict[str, str]:
    response = client.post("/api/v1/tokens", json={"username": user, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_task_list_pages_sort_and_search(client, driver):
    ids = _start(driver, 7)
    numbers = [driver.app(i).number for i in ids]
    login(client, "researcher1")
    pages = [_numbers(client.get(f"/tasks?per_page=3&page={p}")) for p in (1, 2, 3)]
    assert [n for page in pages for n in page] == numbers  # oldest first, no row twice, none lost
    assert [len(p) for p in pages] == [3, 3, 1]
    first = client.get("/tasks?per_page=3")
    assert "(7)" in text_of(first) and 'rel="next"' in first.get_data(as_text=True)
    assert _numbers(client.get("/tasks?per_page=3&sort=-number")) == numbers[::-1][:3]
    assert _numbers(client.get(f"/tasks?q={numbers[4]}")) == [numbers[4]]
    assert _numbers(client.get("/tasks?q=李明")) == numbers  # the representative is a team member
    assert _numbers(client.get("/tasks?q=起草")) == numbers  # the step's name
    assert _numbers(client.get("/tasks?q=nothing-like-this")) == []
    assert _numbers(client.get("/tasks?page=99&per_page=3")) == numbers[6:]  # past the end: the last page


def test_api_task_list_keeps_an_array_with_total_and_links(client, driver):
    ids = _start(driver, 5)
    numbers = [driver.app(i).number for i in ids]
    headers = _token(client, "researcher1")
    response = client.get("/api/v1/tasks?per_page=2&page=2", headers=headers)
    body = response.get_json()
    assert isinstance(body, list) and [t["number"] for t in body] == numbers[2:4]
    assert response.headers["X-Total-Count"] == "5"
    links = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])}
    assert set(links) == {"first", "last", "prev", "next"} and "page=3" in links["next"]
    following = client.get(links["next"], headers=headers).get_json()
    assert [t["number"] for t in following] == numbers[4:]
    assert [t["number"] for t in client.get("/api/v1/tasks?sort=-created", headers=headers).get_json()] == \
        numbers[::-1]
    assert queries.PER_PAGE == 50


def test_applications_board_audit_and_notifications_paginate(client, driver):
    ids = _start(driver, 6)
    numbers = [driver.app(i).number for i in ids]
    _notices(driver, ids)
    board = [_numbers(client.get(f"/publicity?per_page=4&page={p}")) for p in (1, 2)]
    assert board[0] == numbers[:4] and board[1] == numbers[4:]  # ends soonest first
    assert _numbers(client.get("/publicity?q=成果03")) == [numbers[3]]
    api = client.get("/api/v1/publicity?per_page=4&sort=-ends")
    assert [n["number"] for n in api.get_json()] == numbers[::-1][:4] and api.headers["X-Total-Count"] == "6"
    login(client, "researcher1")
    assert _numbers(client.get("/applications?per_page=4&sort=number")) == numbers[:4]
    assert _numbers(client.get("/applications?per_page=4&sort=number&page=2")) == numbers[4:]
    assert sorted(_numbers(client.get("/applications?q=起草"))) == numbers  # a current step's name
    headers = _token(client, "researcher1")
    listed = client.get("/api/v1/applications?per_page=4&sort=-number", headers=headers)
    assert [a["number"] for a in listed.get_json()] == numbers[::-1][:4]
    assert listed.get_json()[0]["current_steps"][0]["bpmn_id"] == "draft"
    client.post("/logout")
    login(client, "auditor1")
    assert _numbers(client.get("/audit?per_page=4")) == numbers[::-1][:4]  # newest first
    assert _numbers(client.get(f"/audit?q={numbers[2]}")) == [numbers[2]]
    client.post("/logout")
    login(client, "tto1")
    with driver.sessions() as s:
        tto = s.execute(select(User).where(User.username == "tto1")).scalar_one()
        for i in range(5):
            s.add(Notification(user_id=tto.id, message=f"通知{i}"))
        s.commit()
    page = text_of(client.get("/notifications?per_page=2"))
    assert "通知4" in page and "通知3" in page and "通知2" not in page and "(5)" in page


LIST_PAGES = ["/tasks", "/applications", "/notifications", "/publicity"]
API_LISTS = ["/api/v1/tasks", "/api/v1/applications", "/api/v1/publicity"]


def _query_counts(client, driver, n: int) -> dict[str, int]:
    ids = _start(driver, n)
    _notices(driver, ids)
    login(client, "researcher1")
    headers = _token(client, "researcher1")
    counts = {}
    app = client.application
    for url in LIST_PAGES + API_LISTS:
        with counted(app) as statements:
            response = client.get(url, headers=headers if url.startswith("/api") else {})
        assert response.status_code == 200, url
        counts[url] = len(statements)
    client.post("/logout")
    login(client, "auditor1")
    with counted(app) as statements:
        assert client.get("/audit").status_code == 200
    counts["/audit"] = len(statements)
    with counted(app) as statements:
        assert client.get(f"/applications/{ids[0]}").status_code == 200
    counts["application page"] = len(statements)
    client.post("/logout")
    return counts


def test_list_pages_issue_a_bounded_number_of_queries(client, driver):
    few = _query_counts(client, driver, 2)
    many = _query_counts(client, driver, 12)  # 14 applications, notices and tasks in all
    assert many == few


def test_finding_7_saved_title_in_the_header_and_consent_badge(client, driver):
    """Issue 11 finding 7: the header kept （尚未填写成果名称） after the title was saved, and the
    status badge said 起草中 while the application waited for the team's consents."""
    from tests.driver import example

    from .conftest import form_fields, post_form
    app_id = driver.start()
    login(client, "researcher1")
    url = f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"
    assert post_form(client, url, [("achievement.title", "已保存的标题")], action="save").status_code == 302
    for page in (client.get(url), client.get(f"/applications/{app_id}")):
        text = text_of(page)
        assert "已保存的标题" in text and "尚未填写成果名称" not in text
    client.post("/logout")
    login(client, "tto1")  # staff see only what was filed, not someone's unsubmitted draft
    assert "已保存的标题" not in text_of(client.get(f"/applications/{app_id}"))
    client.post("/logout")
    login(client, "researcher1")
    post_form(client, url, form_fields(example("ownership_draft")), action="submit")
    assert driver.status(app_id) == "consenting"
    badge = re.search(r'class="status status-(\w+)">([^<]+)<', client.get("/applications").get_data(as_text=True))
    assert badge.groups() == ("consenting", "待成员确认")
