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

from tests.driver import example
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
    print(office.page.eval_on_selector_all("form[data-task-form] [name]", "els => els.map(e => e.name + ':' + e.type)"))
    office.shot("conv-02-plan")
