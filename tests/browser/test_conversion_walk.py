"""After a grant: the team and the office walk a licence priced by agreement through the pages —
plan, price publicity (the clock shifted past its 15 days), contract, an income receipt and a
deduction, a distribution plan, the unit's decision and the payments — and the grant's page shows
its conversion period. The grant itself is made by the engine (tests/browser/test_grant_flow.py
walks one through the pages)."""
from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from workflows import clock
from workflows.models import Distribution, PublicityNotice

from .conftest import SCREENS, Person

pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PLAN = {"mode": "licence", "licence_type": "exclusive", "counterparty.name": "深圳芯视科技有限公司",
        "counterparty.credit_code": "91440300MA5G2XY73M", "pricing_method": "agreement", "price": "1200000.00",
        "valuation.decided_by": "校长办公会",
        "valuation.reason": "受让方为非国有全资企业，经单位集体决策不进行资产评估，以协议定价并公示。"}


def _grant(driver) -> int:
    grant_id = driver.to_publicity()
    driver.pass_publicity(grant_id)
    driver.finish(grant_id)
    return grant_id


def _body(person: Person) -> str:
    return person.page.text_content("body") or ""


def test_a_licence_with_agreement_pricing_walked_by_the_office_and_the_team(browser, live, driver, tmp_path):
    base, _app = live
    grant_id = _grant(driver)
    today = clock.local_date(clock.now()).isoformat()
    evidence = tmp_path / "银行回单.pdf"
    evidence.write_bytes(PDF)

    # the team sees its grant's conversion period and starts a conversion
    team = Person(browser, base).login("researcher1")
    team.go(f"/applications/{grant_id}")
    period = team.page.text_content('[data-testid="conversion-period"]')
    assert "转化期限届满日" in period and "转化期限监督中" in period
    team.shot("conv-01-grant-with-period")
    team.page.click('[data-testid="start-conversion"]')
    team.page.wait_for_selector('[data-testid="conversion-ledger"]')
    assert "已发起成果转化" in _body(team) and "转化合同尚未登记" in _body(team)
    conv_url = team.page.url.replace(base, "")
    conv_id = int(conv_url.rsplit("/", 1)[1])

    # the office drafts the plan: a licence priced by agreement
    office = Person(browser, base).login("tto1")
    office.go("/tasks")
    office.page.click('tr[data-task="conversion_plan"] form button:has-text("认领")')
    office.open_task("conversion_plan")
    assert "深圳芯视科技有限公司" not in _body(office)  # nothing prefilled: the office types the plan
    office.page.click('[data-add-row]')
    office.page.click('[data-add-row]')
    office.fill({**PLAN, "related_parties.0.username": "researcher1", "related_parties.1.username": "researcher2",
                 "related_parties.2.username": "researcher3"})
    office.shot("conv-02-plan")
    office.submit()
    office.page.wait_for_selector('[data-testid="app-number"]')
    assert "公示中" in _body(office)

    # the price notice is on the public board, for what it is
    visitor = Person(browser, base)
    visitor.go("/publicity")
    board = _body(visitor)
    assert "协议定价公示（§三(五)1）" in board and "1,200,000.00" in board
    visitor.shot("conv-03-price-notice-board")
    visitor.close()

    # the term runs out: the clock is shifted past its end (the server thread shares it)
    with driver.sessions() as s:
        ends_at = s.execute(select(PublicityNotice.ends_at).where(PublicityNotice.application_id == conv_id)).scalar_one()
    with freeze_time(ends_at - timedelta(seconds=1)):
        driver.tick()
    assert driver.steps(conv_id) == []
    with freeze_time(ends_at + timedelta(minutes=1)):
        assert driver.tick() >= 1
    assert driver.steps(conv_id) == ["conversion_contract"]

    # the office records the contract at the publicized price
    office.open_task("conversion_contract")
    assert "1200000.00" in _body(office) and "深圳芯视科技有限公司" in _body(office)  # the plan as publicized
    office.fill({"contract_number": "SZDU-JS-2026-018", "signed_on": today, "amount": "1200000.00",
                 "payment_schedule.0.due_on": today, "payment_schedule.0.amount": "1200000.00"})
    office.shot("conv-04-contract")
    office.submit()
    office.go(conv_url)
    ledger = office.page.text_content('[data-testid="conversion-ledger"]')
    assert "SZDU-JS-2026-018" in ledger and "已完成" in _body(office)

    # an income receipt and a deduction, each with its evidence
    income = office.page.locator('[data-testid="income-form"]')
    income.locator('[name="amount"]').fill("1200000.00")
    income.locator('[name="evidence"]').set_input_files(str(evidence))
    income.locator('[name="note"]').fill("首期许可费")
    income.locator('[data-testid="add-income"]').click()
    office.page.wait_for_load_state()
    assert "已登记收入" in _body(office)
    deduction = office.page.locator('[data-testid="deduction-form"]')
    deduction.locator('[name="category"]').select_option("taxes")
    deduction.locator('[name="amount"]').fill("1200000.001")
    deduction.locator('[name="evidence"]').set_input_files(str(evidence))
    deduction.locator('[data-testid="add-deduction"]').click()
    office.page.wait_for_load_state()
    assert "金额最多保留两位小数" in _body(office)  # refused, nothing booked
    deduction = office.page.locator('[data-testid="deduction-form"]')
    deduction.locator('[name="category"]').select_option("taxes")
    deduction.locator('[name="amount"]').fill("100000.00")
    deduction.locator('[name="evidence"]').set_input_files(str(evidence))
    deduction.locator('[data-testid="add-deduction"]').click()
    office.page.wait_for_load_state()
    assert "已登记扣除项" in _body(office)
    ledger = office.page.text_content('[data-testid="conversion-ledger"]')
    assert "1,200,000.00" in ledger and "相关税费" in ledger and "100,000.00" in ledger and "1200000.001" not in ledger
    office.shot("conv-05-ledger")

    # a distribution plan: first one that gives the inventors less than 70%, then a proper one
    plan = {"period_from": "2026-01-01", "period_to": today, "net_income": "1100000.00", "to_people": "700000.00",
            "to_office": "33000.00", "to_unit": "367000.00", "shares.0.name": "陈强", "shares.0.amount": "700000.00",
            "shares.0.contribution": "完成中试工艺"}
    office.fill(plan)
    office.page.click('[data-testid="propose-plan"]')
    office.page.wait_for_load_state()
    assert "不得低于净收入的70%（§三(六)1）" in _body(office)
    office.fill({**plan, "to_people": "770000.00", "to_unit": "297000.00", "shares.0.amount": "770000.00"})
    office.shot("conv-06-plan-form")
    office.page.click('[data-testid="propose-plan"]')
    office.page.wait_for_load_state()
    assert "已提出收益分配方案" in _body(office)

    # the unit decides the plan
    decider = Person(browser, base).login("decider1")
    decider.open_task("distribution_decision")
    assert "770,000.00" in _body(decider)  # the plan, in zh-CN money format
    decider.fill({"meeting_type": "president_office", "meeting_date": today, "participants": "校长办公会7人",
                  "votes_for": 7, "votes_against": 0, "votes_abstain": 0, "result": "approve",
                  "reason": "分配方案符合§三(六)的规定。"})
    decider.shot("conv-07-distribution-decision")
    decider.submit()
    decider.close()

    # the office records each payment
    with driver.sessions() as s:
        plan_row = s.execute(select(Distribution).where(Distribution.conversion_id == conv_id)).scalar_one()
        share_id, process_id = plan_row.shares[0].id, plan_row.process_id
    office.open_task("distribution_payments")
    assert office.page.text_content('[data-testid="share-id"]') == str(share_id)
    office.fill({"payments.0.share_id": share_id, "payments.0.paid_on": today, "payments.0.reference": "YH20261202001"})
    office.shot("conv-08-payments")
    office.submit()
    assert driver.status(process_id) == "completed"

    # the team reads the outcome on the conversion page, and the distribution notice
    team.go(f"/applications/{process_id}")
    team.page.wait_for_selector('#diagram[data-rendered="true"]')
    assert team.page.text_content('[data-testid="paid-on"]') == today
    team.shot("conv-09-distribution-done")
    team.go(conv_url)
    ledger = team.page.text_content('[data-testid="conversion-ledger"]')
    for expected in ("SZDU-JS-2026-018", "1,100,000.00", "770,000.00", "33,000.00", "297,000.00", "陈强",
                     "不低于70%（§三(六)1）"):
        assert expected in ledger, expected
    assert team.page.locator('[data-testid="ledger-forms"]').count() == 0  # the team reads, the office books
    team.page.wait_for_selector('#diagram[data-rendered="true"]')
    team.shot("conv-10-conversion-page-team")
    team.go(f"/applications/{process_id}")
    with team.page.expect_download() as download:
        team.page.click('[data-testid="documents"] a:has-text("收益分配公告")')
    notice = tmp_path / "notice.pdf"
    download.value.save_as(notice)
    assert notice.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(notice), str(SCREENS / "conv-11-distribution-notice")],
                   check=True)
    team.close()
    office.close()
