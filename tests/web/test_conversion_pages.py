"""Pages of a conversion: the grant offers to start one, the board shows a price notice for what
it is, and the conversion page shows its contract, income and distribution with their rules."""
from __future__ import annotations

from tests.driver import Driver, example
from workflows import clock
from workflows.conversion import income
from workflows.documents import document_store
from workflows.models import Application

from .conftest import login, text_of


def completed_grant(driver: Driver) -> int:
    app_id = driver.to_publicity()
    driver.pass_publicity(app_id)
    driver.finish(app_id)
    return app_id


def test_the_team_starts_a_conversion_and_everyone_sees_it_for_what_it_is(client, driver):
    grant_id = completed_grant(driver)
    login(client, "researcher1")
    assert "发起成果转化" in text_of(client.get(f"/applications/{grant_id}"))
    started = client.post(f"/applications/{grant_id}/conversions")
    assert started.status_code == 302
    conv_id = int(started.location.rstrip("/").rsplit("/", 1)[-1])
    page = text_of(client.get(f"/applications/{conv_id}"))
    assert "成果转化" in page and "拟定转化方案" in page and driver.app(grant_id).number in page
    driver.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    html = client.get("/publicity").get_data(as_text=True)
    board = text_of(client.get("/publicity"))
    assert "协议定价公示（§三(五)1）" in board and "1,200,000.00" in board and "深圳芯视科技有限公司" in board
    assert html.count('data-testid="notice-kind"') == 1  # the grant's own notice is over
    driver.pass_publicity(conv_id)
    today = clock.local_date(clock.now()).isoformat()
    driver.complete(conv_id, "conversion_contract", "tto1", dict(example("conversion_contract"), signed_on=today))

    def book(s):
        tto = driver.user(s, "tto1")
        doc = document_store.store(s, s.get(Application, conv_id), "income_evidence", "回单.pdf", b"%PDF-1.4\n%%EOF\n")
        income.record_income(s, tto, conv_id, {"received_on": today, "amount": "1000000.00",
                                               "evidence_document_id": doc.id})
        income.record_deduction(s, tto, conv_id, {"category": "taxes", "incurred_on": today, "amount": "100000.00",
                                                  "evidence_document_id": doc.id})
        income.propose_distribution(s, tto, conv_id, {
            "period_from": "2026-01-01", "period_to": today, "net_income": "900000.00", "to_people": "630000.00",
            "to_office": "27000.00", "to_unit": "243000.00",
            "shares": [{"name": "陈强", "amount": "630000.00", "mode": "cash"}]})
    driver.run(book)
    page = text_of(client.get(f"/applications/{conv_id}"))
    for expected in ("SZDU-JS-2026-018", "1,000,000.00", "相关税费", "900,000.00", "不低于70%（§三(六)1）", "陈强"):
        assert expected in page, expected
    client.post("/logout")
    login(client, "researcher9")
    assert client.get(f"/applications/{conv_id}").status_code == 404


def test_a_member_who_is_not_the_representative_cannot_start_one(client, driver):
    grant_id = completed_grant(driver)
    login(client, "researcher2")
    assert "发起成果转化" not in text_of(client.get(f"/applications/{grant_id}"))
    refused = client.post(f"/applications/{grant_id}/conversions", follow_redirects=True)
    assert "只有团队指定代表或成果转化部门可以发起成果转化" in text_of(refused)
    with driver.sessions() as s:
        assert s.query(Application).filter_by(kind="conversion").count() == 0


def test_a_leaders_reward_is_on_the_board_and_its_process_page_shows_the_plan(client, driver):
    from tests.engine.test_income import converted, evidence, plan, today
    conv_id = converted(driver)
    doc = evidence(driver, conv_id)
    driver.run(lambda s: income.record_income(s, driver.user(s, "tto1"), conv_id, {
        "received_on": today(), "amount": "900000.00", "evidence_document_id": doc}))
    process_id = driver.run(lambda s: income.propose_distribution(s, driver.user(s, "tto1"), conv_id, plan()).process_id)
    board = text_of(client.get("/publicity"))
    assert "领导人员奖励公示（§三(六)3）" in board and "赵校长" in board and "牵头完成转化谈判" in board
    assert "陈强" not in board  # only leaders' rewards are posted
    login(client, "tto1")
    page = text_of(client.get(f"/applications/{process_id}"))
    assert "转化收益分配" in page and "900,000.00" in page and "公示中" in page


def test_the_grant_page_shows_its_conversion_period_and_the_office_decides_at_the_lapse(client, driver):
    from freezegun import freeze_time

    from tests.engine.test_conversion_watch import LAPSE, _grant, _start
    grant_id = _grant(driver)
    watch_id = _start(driver, grant_id).id
    login(client, "researcher1")
    page = text_of(client.get(f"/applications/{grant_id}"))
    assert "转化期限届满日 2030-01-10" in page and "下次提醒 2029-10-13" in page and "SZDU-2027-0001-W" in page
    with freeze_time(LAPSE):  # one sweep long after: the late reminders are skipped, the task is there
        driver.tick()
    client.post("/logout")
    login(client, "tto1")
    task_id = driver.task_id(watch_id, "conversion_lapse")
    task_page = text_of(client.get(f"/tasks/{task_id}"))
    assert "转化期限届满处理" in task_page and "延长后的转化期限届满日" in task_page
    driver.complete(watch_id, "conversion_lapse", "tto1", {"decision": "extend", "new_last_day": "2031-01-10",
                                                           "reason": "中试顺利。"})
    page = text_of(client.get(f"/applications/{grant_id}"))
    assert "由2030-01-10延长至2031-01-10：中试顺利。" in page and "转化期限届满日 2031-01-10" in page


def test_the_use_right_page_follows_its_supplementary_agreement(client, driver):
    from tests.engine.test_conversion_watch import _extend, _use_right
    grant_id, number = _use_right(driver)
    ext = _extend(driver, number, "2041-12-31")
    login(client, "researcher1")
    page = text_of(client.get(f"/applications/{grant_id}"))
    assert "转化期限届满日 2041-12-31" in page and "下次提醒 2041-10-03" in page
    assert f"由2036-12-31延长至2041-12-31：补充协议（延长申请{driver.app(ext).number}）生效" in page
