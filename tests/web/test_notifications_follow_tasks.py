"""Issue 11, finding 9: a notice about a task stops counting as unread once the task is done
or cancelled (the bell showed work that no longer waited)."""
from __future__ import annotations

from tests.web.conftest import login


def unread_badge(client) -> bool:
    return 'data-testid="unread-count"' in client.get("/applications").get_data(as_text=True)


def test_completing_a_task_reads_its_notice(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "tto1")
    assert unread_badge(client)  # the review is waiting for tto1
    driver.review(app_id)
    assert not unread_badge(client)


def test_cancelled_tasks_read_their_notices(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    login(client, "researcher2")
    assert unread_badge(client)  # asked to consent
    client.post("/logout")
    login(client, "researcher1")
    assert client.post(f"/applications/{app_id}/withdraw").status_code == 302
    client.post("/logout")
    login(client, "researcher2")
    assert not unread_badge(client)
