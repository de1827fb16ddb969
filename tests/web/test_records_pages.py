"""What a person sees of the record rules: the 回避 warning on the draft form and after
submitting, the name rule next to its field, and the agreement terms and IP-transfer filing on
the application page."""
from __future__ import annotations

from tests.driver import example
from workflows.process import engine

from .conftest import form_fields, login, post_form, text_of


def _draft_with_tto_in_team() -> dict:
    draft = example("ownership_draft")
    draft["members"][2].update(username="tto1", name="刘洋")
    return draft


def _draft_url(driver, app_id):
    return f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"


def test_draft_form_warns_when_the_only_officer_is_in_the_team(client, driver):
    app_id = driver.start()
    url = _draft_url(driver, app_id)
    login(client, "researcher1")
    assert 'data-testid="recusal-warning"' not in client.get(url).get_data(as_text=True)
    task_id = url.rsplit("/", 1)[-1]
    driver.run(lambda s: engine.save_task_draft(s, driver.user(s, "researcher1"), task_id, _draft_with_tto_in_team()))
    html = client.get(url).get_data(as_text=True)
    assert 'data-testid="recusal-warning"' in html
    assert "刘洋（tto1）是本单位仅有的成果转化部门经办人" in text_of(client.get(url))


def test_submitting_the_draft_repeats_the_warning(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    response = post_form(client, _draft_url(driver, app_id), form_fields(_draft_with_tto_in_team()), action="submit")
    assert response.status_code == 302
    page = client.get(response.location)
    assert 'class="flash flash-warn"' in page.get_data(as_text=True)
    assert "请联系管理员为团队以外的人员授予“成果转化部门经办人”角色" in text_of(page)
    assert driver.steps(app_id) == ["consent"] * 3  # a warning, not a refusal


def test_a_name_that_is_not_the_accounts_is_shown_next_to_the_field(client, driver):
    app_id = driver.start()
    draft = example("ownership_draft")
    draft["members"][1]["name"] = "李四"
    login(client, "researcher1")
    response = post_form(client, _draft_url(driver, app_id), form_fields(draft), action="submit")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-error-for="members.1.name"' in html
    assert "第2行：用户 researcher2 的姓名为&#34;王芳&#34;，与填写的&#34;李四&#34;不一致" in html
    assert driver.steps(app_id) == ["draft"]


def test_application_page_shows_the_terms_and_the_ip_transfer_record(client, driver):
    app_id = driver.to_publicity()
    driver.pass_publicity(app_id)
    driver.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    login(client, "researcher1")
    page = text_of(client.get(f"/applications/{app_id}"))
    assert "协议条款" in page and "深圳国际仲裁院" in page
    assert "知识产权变更登记" not in page
    driver.sign_both(app_id)
    driver.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
    html = client.get(f"/applications/{app_id}").get_data(as_text=True)
    assert 'data-testid="ip-transfer"' in html and 'data-testid="agreement-terms"' in html
    page = text_of(client.get(f"/applications/{app_id}"))
    filing = example("ip_transfer")
    assert filing["office"] in page and filing["filing_number"] in page and filing["filing_date"] in page
