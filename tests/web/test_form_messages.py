"""Issue 11, finding 11: form messages say what to do — type a whole number, tick a box —
a rule broken by several boxes is said once, and a draft cannot be saved over a field's limit."""
from __future__ import annotations

from tests.driver import example
from workflows.errors import ValidationFailed
from workflows.process import forms

from .conftest import form_fields, login, post_form, text_of


def _errors(form: str, data: dict) -> list[tuple[str, str]]:
    try:
        forms.validate(form, data)
    except ValidationFailed as exc:
        return [(e["field"], str(e["message"])) for e in exc.errors]
    raise AssertionError("accepted")


def test_a_non_integer_asks_for_an_integer():
    data = example("unit_decision") | {"votes_abstain": 1.5}
    assert ("votes_abstain", "弃权票：请输入整数") in _errors("unit_decision.schema.json", data)
    terms = example("ownership_terms") | {"conversion_period_months": "十二"}
    assert ("conversion_period_months", "转化期限（月）：请输入整数") in _errors("ownership_terms.schema.json", terms)


def test_a_missing_yes_no_asks_to_choose_and_a_missing_checkbox_asks_to_tick():
    data = example("ownership_draft")
    del data["prior_reward_received"]
    del data["eligibility"]["strong_will"]
    errors = dict(_errors("ownership_draft.schema.json", data))
    assert errors["prior_reward_received"] == "请选择本成果已获得转化奖励"
    assert errors["eligibility.strong_will"] == "请勾选赋权条件（团队声明）·转化意愿强烈"
    assert "为必填项" not in " ".join(errors.values())


def test_the_eligibility_rule_is_said_once_when_several_conditions_fail(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "tto1")
    review = example("review")
    review["checks"] = dict.fromkeys(review["checks"], False)
    fields = [f for f in form_fields(review) if not f[0].startswith("checks.")]
    response = post_form(client, f"/tasks/{driver.task_id(app_id, 'review', 'tto1')}", fields, action="submit")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.count('data-error-for="checks.') == 1      # beside the first failing box only
    assert text_of(response).count("未满足的不得通过") == 2  # there and once in the list on top


def test_saving_a_draft_with_an_overlong_title_is_refused_with_the_limit(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    url = f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"
    response = post_form(client, url, [("achievement.title", "长" * 800)], action="save")
    assert response.status_code == 422
    page = text_of(response)
    assert "草稿未保存" in page and "成果名称不得超过200个字" in page
    assert "长" * 800 in response.get_data(as_text=True)  # what was typed stays on the page to shorten
    assert post_form(client, url, [("achievement.title", "长" * 200)], action="save").status_code == 302

