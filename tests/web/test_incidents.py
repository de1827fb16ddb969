"""Incidents for administrators (issue 8, finding 10): the page and the API show the failed
step with its error, a retry after the cause is fixed lets the application move on, others
are refused; and an error page is rendered only after the failed step's changes are undone."""
from __future__ import annotations

import re

from freezegun import freeze_time
from sqlalchemy import func, select

from tests.engine.test_sweep_incidents import in_publicity, incident_of, poison, restore
from tests.web.conftest import login, post_form, text_of
from workflows.errors import GrantError
from workflows.models import PublicityNotice
from workflows.process import runtime


def _failed_sweep(driver):
    [app_id] = in_publicity(driver, 1)
    good = poison(driver, app_id)
    with driver.sessions() as s:
        ends = s.execute(select(func.max(PublicityNotice.ends_at))).scalar_one()
    return app_id, good, ends


def _token(client, username):
    response = client.post("/api/v1/tokens", json={"username": username, "password": "demo-pass-2026"})
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_admin_sees_the_incident_and_retries_it_after_the_fix(client, driver):
    app_id, good, ends = _failed_sweep(driver)
    with freeze_time(ends):
        driver.tick()
        incident = incident_of(driver, app_id)
        login(client, "admin")
        page = client.get("/admin/incidents")
        assert page.status_code == 200 and incident_of(driver, app_id).error.split(":")[0] in text_of(page)
        failed = client.post(f"/admin/incidents/{incident.id}/retry", follow_redirects=True)
        assert "重试仍然失败" in text_of(failed) and incident_of(driver, app_id).attempts == 2
        restore(driver, app_id, good)
        done = client.post(f"/admin/incidents/{incident.id}/retry", follow_redirects=True)
        assert "重试成功" in text_of(done)
        assert driver.status(app_id) == "agreement" and incident_of(driver, app_id) is None
        assert "没有故障" in text_of(client.get("/admin/incidents"))


def test_incidents_api_is_for_administrators_only(client, driver):
    app_id, good, ends = _failed_sweep(driver)
    with freeze_time(ends):
        driver.tick()
        admin, officer = _token(client, "admin"), _token(client, "tto1")
        assert client.get("/api/v1/incidents", headers=officer).status_code == 403
        listed = client.get("/api/v1/incidents", headers=admin).get_json()
        assert [i["application_id"] for i in listed] == [app_id] and listed[0]["error"] == incident_of(driver, app_id).error
        incident_id = listed[0]["id"]
        assert client.post(f"/api/v1/incidents/{incident_id}/retry", headers=officer).status_code == 403
        assert client.post("/api/v1/incidents/999999/retry", headers=admin).status_code == 404
        restore(driver, app_id, good)
        retried = client.post(f"/api/v1/incidents/{incident_id}/retry", headers=admin)
        assert retried.status_code == 200 and retried.get_json()["resolved_at"]
        assert client.get("/api/v1/incidents", headers=admin).get_json() == []
        assert len(client.get("/api/v1/incidents?all=1", headers=admin).get_json()) == 1
    login(client, "tto1")
    assert client.get("/admin/incidents").status_code == 403


def _badge(page) -> str:
    found = re.search(r'data-testid="task-count">(\d+)<', page.get_data(as_text=True))
    return found.group(1) if found else "0"


def test_an_error_page_is_rendered_after_the_failed_step_is_rolled_back(client, driver, monkeypatch):
    """The task count in the header is a query: on a session still holding the failed step's
    changes it would autoflush them and count the task as done."""
    app_id = driver.start()
    driver.draft(app_id)
    consent = driver.task_id(app_id, "consent", "researcher2")
    login(client, "researcher2")
    before = _badge(client.get("/tasks"))
    assert before != "0"

    def fail(*_args, **_kwargs):
        raise GrantError("流程引擎故障（测试）")
    monkeypatch.setattr(runtime, "complete", fail)
    page = post_form(client, f"/tasks/{consent}", [("agree", "true")], action="submit")
    assert page.status_code == 400 and "流程引擎故障" in text_of(page)
    assert _badge(page) == before
