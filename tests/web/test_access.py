"""Every page and write outside a role's rights is refused; other teams' and units' work is
invisible (404, as if it did not exist); auditors can read but never write."""
from __future__ import annotations

import pytest

from .conftest import login, text_of

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def drafted(driver):
    """An ownership application of researcher1's team, waiting for the members' consent."""
    app_id = driver.start()
    driver.draft(app_id)
    return app_id


def _urls(driver, app_id: int) -> list[str]:
    task = driver.task_id(app_id, "consent", "researcher2")
    return [f"/applications/{app_id}", f"/applications/{app_id}/diagram.bpmn", f"/tasks/{task}"]


@pytest.mark.parametrize("who", ["researcher9", "tto2", "auditor2"])
def test_outsiders_get_404_for_another_teams_or_units_application(client, driver, drafted, who):
    login(client, who)
    for url in _urls(driver, drafted):
        assert client.get(url).status_code == 404, url
    number = driver.app(drafted).number
    assert number.startswith("SZDU-")
    assert number not in text_of(client.get("/applications")).split()
    assert "SZDU-" not in text_of(client.get("/applications"))


@pytest.mark.parametrize("who", ["researcher1", "researcher2", "tto1", "decider1", "auditor1"])
def test_team_and_unit_staff_may_read(client, driver, drafted, who):
    login(client, who)
    for url in _urls(driver, drafted):
        assert client.get(url).status_code == 200, url


def test_auditor_sees_no_write_buttons(client, driver, drafted):
    login(client, "auditor1")
    html = client.get(f"/applications/{drafted}").get_data(as_text=True)
    assert html.count('method="post"') == 1  # the sign-out form only
    assert "撤回申请" not in html
    task = driver.task_id(drafted, "consent", "researcher2")
    page = client.get(f"/tasks/{task}").get_data(as_text=True)
    assert 'data-testid="submit"' not in page and "您当前只能查看" in page


def test_auditor_cannot_post_anything(client, driver, drafted):
    login(client, "auditor1")
    consent = driver.task_id(drafted, "consent", "researcher2")
    refused = {
        "/applications/new": {"unit_id": "1", "kind": "ownership"},
        f"/applications/{drafted}/withdraw": {},
        f"/tasks/{consent}": {"agree": "true", "action": "submit"},
        f"/tasks/{consent}/claim": {},
        f"/tasks/{consent}/release": {},
        f"/tasks/{consent}/reassign": {"to": "tto1"},
        "/admin/units": {"code": "X1", "name": "x"},
        "/admin/users": {"username": "x"},
    }
    for url, data in refused.items():
        response = client.post(url, data=data)
        assert response.status_code in (403, 404), (url, response.status_code)
    upload = client.post(f"/tasks/{consent}/upload", data={"file": (__import__("io").BytesIO(PDF), "a.pdf")},
                         headers={"Accept": "application/json"})
    assert upload.status_code == 403
    assert driver.status(drafted) == "consenting"
    assert driver.steps(drafted) == ["consent", "consent", "consent"]


def test_researcher_cannot_act_on_another_members_task(client, driver, drafted):
    login(client, "researcher1")
    other = driver.task_id(drafted, "consent", "researcher2")
    response = client.post(f"/tasks/{other}", data={"agree": "true", "action": "submit"})
    assert response.status_code == 403
    assert "其他成员的个人任务" in text_of(response)


def test_representative_may_withdraw_but_members_may_not(client, driver, drafted):
    login(client, "researcher2")
    assert client.post(f"/applications/{drafted}/withdraw").status_code == 403
    client.post("/logout")
    login(client, "researcher1")
    page = client.get(f"/applications/{drafted}").get_data(as_text=True)
    assert 'data-testid="withdraw"' in page and "data-confirm" in page
    assert client.post(f"/applications/{drafted}/withdraw").status_code == 302
    assert driver.status(drafted) == "withdrawn"
    again = client.post(f"/applications/{drafted}/withdraw")
    assert again.status_code == 409 and "不能再撤回" in text_of(again)


@pytest.mark.parametrize("who", ["researcher1", "tto1", "decider1", "admin"])
def test_audit_pages_need_the_auditor_role(client, who):
    login(client, who)
    assert client.get("/audit").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403


@pytest.mark.parametrize("who", ["researcher1", "tto1", "auditor1", "tto2"])
def test_admin_pages_need_an_administrator(client, who):
    login(client, who)
    for url in ("/admin/units", "/admin/users", "/admin/processes"):
        assert client.get(url).status_code == 403, url


def test_navigation_shows_only_what_the_role_may_use(client):
    login(client, "researcher1")
    html = client.get("/tasks").get_data(as_text=True)
    assert 'href="/audit"' not in html and 'href="/admin/units"' not in html
    client.post("/logout")
    login(client, "auditor1")
    assert 'href="/audit"' in client.get("/tasks").get_data(as_text=True)
    client.post("/logout")
    login(client, "admin")
    assert 'href="/admin/units"' in client.get("/tasks").get_data(as_text=True)


def test_documents_of_other_teams_are_invisible(client, driver, drafted):
    login(client, "researcher1")
    consent = driver.task_id(drafted, "consent", "researcher1")
    uploaded = client.post(f"/tasks/{consent}/upload", data={"file": (__import__("io").BytesIO(PDF), "证明.pdf")},
                           headers={"Accept": "application/json"})
    assert uploaded.status_code == 201
    doc_id = uploaded.get_json()["id"]
    assert client.get(f"/documents/{doc_id}").data == PDF
    client.post("/logout")
    login(client, "researcher9")
    assert client.get(f"/documents/{doc_id}").status_code == 404
