"""/admin/units/<id>: an administrator changes the choices the policy leaves to a unit (leaders'
reward publicity term, conversion-period reminders, reward after a grant, auditors seeing
objectors); every problem is named at once, nothing changes unless all are fine, and each change
is in the audit log. Nobody else may change them, through the page or the engine."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.conftest import login, text_of
from workflows.errors import Forbidden
from workflows.models import AuditEvent, Unit
from workflows.people import accounts

GOOD = {"name": "深圳示范大学", "contact": "0755-1234 5678", "leader_publicity_days": "20",
        "conversion_reminder_first_days": "120", "conversion_reminder_second_days": "45",
        "reward_after_grant": "1"}


def _unit(driver, code: str = "SZDU") -> Unit:
    return driver.run(lambda s: s.execute(select(Unit).where(Unit.code == code)).scalar_one())


def _settings_events(driver) -> list[AuditEvent]:
    return driver.run(lambda s: s.execute(select(AuditEvent).where(
        AuditEvent.action == "update_unit_settings")).scalars().all())


def test_an_administrator_changes_a_units_settings_and_the_change_is_audited(client, driver):
    unit = _unit(driver)
    login(client, "admin")
    page = client.get(f"/admin/units/{unit.id}")
    assert page.status_code == 200 and "领导人员奖励公示天数" in text_of(page)
    assert 'value="90"' in page.get_data(as_text=True)   # the defaults are shown
    saved = client.post(f"/admin/units/{unit.id}", data=GOOD)
    assert saved.status_code == 302
    after = _unit(driver)
    assert (after.leader_publicity_days, after.conversion_reminder_first_days,
            after.conversion_reminder_second_days) == (20, 120, 45)
    assert after.reward_after_grant is True and after.auditors_see_objectors is False  # unticked box
    assert after.contact == "0755-1234 5678"
    [event] = _settings_events(driver)
    assert event.actor == "admin" and event.unit_id == unit.id
    assert event.detail["changed"]["conversion_reminder_first_days"] == [90, 120]
    assert "name" not in event.detail["changed"]                   # unchanged fields are not listed
    again = client.post(f"/admin/units/{unit.id}", data=GOOD, follow_redirects=True)
    assert "设置没有变化" in text_of(again) and len(_settings_events(driver)) == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("leader_publicity_days", "0", "请输入1至365之间的整数"),
    ("leader_publicity_days", "十五", "请输入1至365之间的整数"),
    ("conversion_reminder_first_days", "-5", "请输入1至3650之间的整数"),
    ("conversion_reminder_second_days", "130", "第二次提醒须晚于第一次提醒"),
    ("name", "  ", "请填写单位名称"),
    ("contact", "电" * 501, "不能超过500个字符"),
])
def test_bad_settings_are_refused_with_their_message_and_change_nothing(client, driver, field, value, message):
    unit = _unit(driver)
    login(client, "admin")
    refused = client.post(f"/admin/units/{unit.id}", data={**GOOD, field: value})
    assert refused.status_code == 422
    text = text_of(refused)
    assert message in text and "请修改以下1处问题后再提交" in text
    after = _unit(driver)
    assert (after.name, after.leader_publicity_days, after.conversion_reminder_first_days,
            after.reward_after_grant) == (unit.name, unit.leader_publicity_days,
                                          unit.conversion_reminder_first_days, unit.reward_after_grant)
    assert _settings_events(driver) == []


def test_every_problem_is_named_at_once(client, driver):
    unit = _unit(driver)
    login(client, "admin")
    refused = client.post(f"/admin/units/{unit.id}", data={**GOOD, "name": "", "leader_publicity_days": "x"})
    assert refused.status_code == 422 and "请修改以下2处问题后再提交" in text_of(refused)


@pytest.mark.parametrize("username", ["tto1", "auditor1", "researcher1", "decider1"])
def test_nobody_but_an_administrator_may_change_them(client, driver, username):
    unit = _unit(driver)
    login(client, username)
    assert client.get(f"/admin/units/{unit.id}").status_code == 403
    assert client.post(f"/admin/units/{unit.id}", data=GOOD).status_code == 403
    actor = driver.run(lambda s: driver.user(s, username))
    with pytest.raises(Forbidden):
        driver.run(lambda s: accounts.update_unit_settings(s, driver.user(s, username), s.get(Unit, unit.id), GOOD))
    assert _unit(driver).leader_publicity_days == unit.leader_publicity_days and actor.username == username


def test_an_unknown_unit_is_404(client):
    login(client, "admin")
    assert client.get("/admin/units/99999").status_code == 404
