"""Issue 11, finding 8: people without tasks start on a page that serves them, and staff
who are not researchers see the list named 全部申请, not 我的申请."""
from __future__ import annotations

from tests.driver import PASSWORD
from tests.web.conftest import login, text_of
from workflows.people import accounts
from workflows.people.access import SystemActor


def test_auditor_lands_on_the_audit_view(client):
    response = login(client, "auditor1")
    assert client.get(response.headers["Location"]).headers["Location"].endswith("/audit")
    assert client.get("/").headers["Location"].endswith("/audit")
    assert client.get("/login").headers["Location"].endswith("/audit")


def test_city_auditor_lands_on_the_registry(client, driver):
    driver.run(lambda s: accounts.create_user(s, "city1", "钱市", PASSWORD, roles=[("city_auditor", None)], actor=SystemActor("tests")))
    login(client, "city1")
    target = client.get("/").headers["Location"]
    assert target.endswith("/registry"), target
    assert client.get(target).status_code == 200


def test_researcher_and_tto_still_land_on_their_tasks(client):
    login(client, "tto1")
    assert client.get("/").headers["Location"].endswith("/tasks")


def test_staff_see_all_applications_researchers_see_theirs(client, driver):
    app_id = driver.start()
    login(client, "tto1")
    page = text_of(client.get("/applications"))
    assert "我的申请" not in page and "全部申请" in page
    assert "我的申请" not in text_of(client.get(f"/applications/{app_id}"))
    client.post("/logout")
    login(client, "researcher1")
    assert "我的申请" in text_of(client.get("/applications"))
