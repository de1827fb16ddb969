"""The task list and the task page generated from the step's JSON Schema: rendering,
validation errors next to the fields, drafts, claim/release/reassign and uploads."""
from __future__ import annotations

import io
import re

import pytest

from tests.driver import example
from workflows.people import accounts
from workflows.people.access import SystemActor

from .conftest import form_fields, login, post_form, text_of

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def started(driver):
    return driver.start()


def _draft_url(driver, app_id):
    return f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"


def test_draft_form_is_generated_from_the_schema(client, driver, started):
    login(client, "researcher1")
    html = client.get(_draft_url(driver, started)).get_data(as_text=True)
    assert 'name="achievement.title"' in html                       # nested object → fieldset
    assert '<option value="patent"' in html and "专利权" in html       # enum with enumNames
    assert 'name="members.0.username" value="researcher1"' in html  # team table, representative first
    assert "data-share-total" in html and "data-add-row" in html    # live share total, add/remove rows
    assert 'name="security_categories" value="state_secret"' in html  # enum array → checkboxes
    assert 'name="prior_reward_received" value="true"' in html      # required boolean → yes/no
    assert re.search(r'<textarea[^>]+name="conversion_plan"', html)  # long text → textarea
    assert 'data-upload-url=' in html                               # attachments → upload
    assert 'name="proposed_price" type="text" inputmode="decimal"' in html


def test_validation_errors_are_shown_next_to_the_fields_with_input_kept(client, driver, started):
    login(client, "researcher1")
    data = example("ownership_draft")
    data["members"][2]["share"] = 10
    data["members"][1]["username"] = "nobody"
    response = post_form(client, _draft_url(driver, started), form_fields(data), action="submit")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "团队内部收益分配比例合计须为100%，当前为90%" in text_of(response)
    assert re.search(r'data-error-for="members.1.username">第2行：系统中没有用户“nobody”', html)
    assert 'name="members.2.share" value="10"' in html                # what was typed stays
    assert 'name="members.1.username" value="nobody"' in html
    assert driver.steps(started) == ["draft"]


def test_schema_errors_name_the_field(client, driver, started):
    login(client, "researcher1")
    data = example("ownership_draft")
    del data["recipient"]
    data["members"][0]["share"] = "五十"
    response = post_form(client, _draft_url(driver, started), form_fields(data), action="submit")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-error-for="recipient">承接对象为必填项' in html
    assert 'data-error-for="members.0.share">' in html
    assert 'value="五十"' in html


def test_save_draft_keeps_the_input_for_later(client, driver, started):
    login(client, "researcher1")
    url = _draft_url(driver, started)
    fields = [("achievement.title", "半成品标题"), ("members.0.username", "researcher1"), ("members.0.share", "40")]
    assert post_form(client, url, fields, action="save").status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert 'value="半成品标题"' in html and 'name="members.0.share" value="40"' in html
    assert driver.steps(started) == ["draft"]


def test_submitting_the_draft_starts_consent_and_members_see_the_summary(client, driver, started):
    login(client, "researcher1")
    response = post_form(client, _draft_url(driver, started), form_fields(example("ownership_draft")), action="submit")
    assert response.status_code == 302 and response.location == f"/applications/{started}"
    assert driver.steps(started) == ["consent", "consent", "consent"]
    client.post("/logout")
    login(client, "researcher2")
    tasks = text_of(client.get("/tasks"))
    assert "一种低功耗图像识别芯片架构" in tasks
    consent = driver.task_id(started, "consent", "researcher2")
    page = client.get(f"/tasks/{consent}")
    assert "申请内容" in text_of(page) and "深圳芯视科技有限公司" in text_of(page)
    assert post_form(client, f"/tasks/{consent}", [("agree", "true")], action="submit").status_code == 302


def test_return_comments_are_shown_to_the_team_on_the_draft(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "tto1")
    review = driver.task_id(app_id, "review", "tto1")
    page = text_of(client.get(f"/tasks/{review}"))
    assert "申请内容" in page and "赋权条件审查" in page
    data = example("review") | {"decision": "return", "comments": "请补充承接企业的合作协议。"}
    assert post_form(client, f"/tasks/{review}", form_fields(data), action="submit").status_code == 302
    client.post("/logout")
    login(client, "researcher1")
    draft = client.get(_draft_url(driver, app_id))
    assert "成果转化部门退回修改意见" in text_of(draft) and "请补充承接企业的合作协议。" in text_of(draft)
    assert 'value="一种低功耗图像识别芯片架构"' in draft.get_data(as_text=True)  # the revision starts from the filing


def test_task_list_filters(client, driver):
    first = driver.start()
    driver.draft(first)
    login(client, "researcher1")
    assert text_of(client.get("/tasks")).count("SZDU-") == 1
    assert "SZDU-" in text_of(client.get("/tasks?step=consent"))
    assert "SZDU-" not in text_of(client.get("/tasks?step=review"))
    assert "SZDU-" not in text_of(client.get("/tasks?kind=use_right"))
    assert "SZDU-" in text_of(client.get("/tasks?since=2000-01-01"))
    assert "SZDU-" not in text_of(client.get("/tasks?since=2999-01-01"))
    assert client.get("/tasks?since=garbage").status_code == 200


def test_claim_release_and_reassign(client, app, driver):
    with app.extensions["grants_sessions"]() as s:
        accounts.create_user(s, "tto1b", "赵敏", "another-pass-2026", roles=[("tto", "SZDU")], actor=SystemActor("tests"))
        s.commit()
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    review = driver.task_id(app_id, "review")
    login(client, "tto1")
    listing = client.get("/tasks").get_data(as_text=True)
    assert "待认领" in listing and f"/tasks/{review}/claim" in listing
    assert client.post(f"/tasks/{review}/claim").status_code == 302
    assert "刘洋" in text_of(client.get("/tasks"))
    assert client.post(f"/tasks/{review}/release").status_code == 302
    page = client.get(f"/tasks/{review}").get_data(as_text=True)
    assert 'value="tto1b"' in page  # colleagues of the same role
    assert client.post(f"/tasks/{review}/reassign", data={"to": "tto1b"}).status_code == 302
    assert "赵敏" in text_of(client.get(f"/applications/{app_id}"))
    # now it is tto1b's: tto1 can no longer complete it
    response = post_form(client, f"/tasks/{review}", form_fields(example("review")), action="submit")
    assert response.status_code == 403 and "已由赵敏认领" in text_of(response)


def test_upload_returns_the_document_id_and_refuses_other_files(client, driver, started):
    login(client, "researcher1")
    url = _draft_url(driver, started) + "/upload"
    ok = client.post(url, data={"file": (io.BytesIO(PDF), "专利证书.pdf")}, headers={"Accept": "application/json"})
    assert ok.status_code == 201 and ok.get_json()["filename"] == "专利证书.pdf"
    bad = client.post(url, data={"file": (io.BytesIO(b"MZ\x90\x00"), "x.pdf")}, headers={"Accept": "application/json"})
    assert bad.status_code == 422 and "只能上传PDF、PNG或JPEG文件" in bad.get_json()["error"]
    data = example("ownership_draft") | {"attachments": [{"document_id": ok.get_json()["id"], "label": "证书"}]}
    response = post_form(client, _draft_url(driver, started), form_fields(data), action="submit")
    assert response.status_code == 302
    assert "专利证书.pdf" in text_of(client.get(f"/applications/{started}"))


def test_notifications_can_be_read(client, driver, started):
    login(client, "researcher1")
    page = text_of(client.get("/notifications"))
    assert "待您处理" in page
    assert client.post("/notifications/read-all").status_code == 302
    assert "没有未读通知" in text_of(client.get("/notifications"))


def test_notifications_follow_the_readers_language(client, driver, started):
    login(client, "researcher1")
    client.get("/locale/en")
    page = text_of(client.get("/notifications"))
    assert "is waiting for you" in page and "待您处理" not in page
