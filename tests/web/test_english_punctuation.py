"""Issue 11, finding 12: English pages carry English punctuation (the catalogue strings hold it),
and CSV downloads name their charset once."""
from __future__ import annotations

from .conftest import login, text_of


def test_task_page_in_english_has_no_full_width_punctuation(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    client.get("/locale/en")
    page = text_of(client.get(f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"))
    assert "Handled by:" in page and "(waiting" in page
    assert "：" not in page and "（" not in page and "）" not in page
    show = text_of(client.get(f"/applications/{app_id}"))
    assert "Handled by:" in show and "：" not in show


def test_chinese_pages_keep_their_punctuation(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    page = text_of(client.get(f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"))
    assert "处理人：" in page and "（已等待" in page


def test_csv_downloads_name_the_charset_once(client):
    login(client, "auditor1")
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
