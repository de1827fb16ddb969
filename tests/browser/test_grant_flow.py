"""One ownership grant carried from draft to completion by the demo users in a real browser."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from freezegun import freeze_time

from workflows import clock

from .conftest import Person

pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def draft_fields(third_share: int) -> dict[str, object]:
    return {
        "achievement.title": "一种低功耗图像识别芯片架构", "achievement.ip_type": "patent",
        "achievement.ip_numbers": "ZL202310123456.7", "achievement.funding_source": "fiscal",
        "achievement.description": "面向边缘设备的低功耗图像识别芯片架构。",
        "members.0.share": 50, "members.0.contribution": "主要发明人，完成核心算法", "members.0.reward_mode": "none",
        "members.1.username": "researcher2", "members.1.name": "王芳", "members.1.share": 30,
        "members.1.is_leader": True, "members.1.contribution": "副院长，负责实验验证", "members.1.reward_mode": "cash",
        "members.2.username": "researcher3", "members.2.name": "张伟", "members.2.share": third_share,
        "members.2.reward_mode": "none",
        "recipient": "深圳芯视科技有限公司", "incentive_mode": "rights_grant", "prior_reward_received": False,
        "eligibility.clear_ownership": True, "eligibility.clear_prospects": True,
        "eligibility.recipient_identified": True, "eligibility.strong_will": True,
        "pricing_method": "none", "ownership_mode": "shares", "team_share": 80,
        "conversion_plan": "与承接企业合作开展产业化。",
    }


def test_ownership_grant_from_draft_to_completion(browser, live, driver, tmp_path):
    base, _app = live
    today = clock.local_date(clock.now()).isoformat()

    # researcher1 drafts with three members, sees the validation error, fixes it and submits
    r1 = Person(browser, base).login("researcher1")
    r1.shot("01-tasks-empty")
    r1.go("/applications/new")
    r1.shot("02-new-application")
    r1.page.click('[data-testid="start"]')
    r1.page.wait_for_selector("form[data-task-form]")
    r1.page.click("[data-add-row]")
    r1.page.click("[data-add-row]")
    r1.fill(draft_fields(third_share=10))
    assert r1.page.text_content("[data-share-total]") == "90"
    assert "ok" not in (r1.page.get_attribute("[data-share-total]", "class") or "")
    upload = tmp_path / "专利证书.pdf"
    upload.write_bytes(PDF)
    r1.page.set_input_files('[data-testid="upload-attachments"]', str(upload))
    r1.page.wait_for_selector('[data-attachments] li[data-row] a:has-text("专利证书.pdf")')
    r1.submit()
    assert "团队内部收益分配比例合计须为100%，当前为90%" in r1.page.text_content("body")
    assert r1.page.input_value('[name="members.2.share"]') == "10"
    r1.shot("03-draft-validation-errors")
    r1.fill({"members.2.share": 20})
    assert r1.page.text_content("[data-share-total]") == "100"
    assert "ok" in r1.page.get_attribute("[data-share-total]", "class")
    r1.shot("04-draft-form")
    r1.submit()
    r1.page.wait_for_selector('[data-testid="app-number"]')
    number = r1.page.text_content('[data-testid="app-number"]')
    app_url = r1.page.url.replace(base, "")
    assert "专利证书.pdf" in r1.page.text_content('[data-testid="documents"]')

    # each member consents
    for who in ("researcher1", "researcher2", "researcher3"):
        person = r1 if who == "researcher1" else Person(browser, base).login(who)
        person.open_task("consent")
        assert "深圳芯视科技有限公司" in person.page.text_content("body")
        if who == "researcher2":
            person.shot("05-consent")
        person.fill({"agree": True, "comment": "同意"})
        person.submit()
        if person is not r1:
            person.close()

    # tto1 claims and reviews
    tto = Person(browser, base).login("tto1")
    tto.go("/tasks")
    tto.page.click('tr[data-task="review"] form button:has-text("认领")')
    tto.open_task("review")
    tto.shot("06-review")
    tto.fill({"decision": "approve", "checks.clear_ownership": True, "checks.clear_prospects": True,
              "checks.recipient_identified": True, "checks.strong_will": True, "excluded_category": "none",
              "comments": "材料齐全，符合赋权条件。"})
    tto.submit()

    # decider1 records the collective decision
    decider = Person(browser, base).login("decider1")
    decider.open_task("unit_decision")
    assert "材料齐全，符合赋权条件。" in decider.page.text_content("body")
    decider.fill({"meeting_type": "president_office", "meeting_date": today, "participants": "校长办公会7人",
                  "votes_for": 6, "votes_against": 0, "votes_abstain": 1, "result": "approve",
                  "reason": "符合赋权条件，同意赋权并公示。"})
    decider.submit()
    decider.go(app_url)
    assert "公示中" in decider.page.text_content("body")
    decider.page.wait_for_selector('#diagram[data-rendered="true"]')
    decider.shot("07-application-in-publicity")
    decider.close()

    # an anonymous visitor objects on the public board
    visitor = Person(browser, base)
    visitor.go("/publicity")
    assert "一种低功耗图像识别芯片架构" in visitor.page.text_content("body")
    visitor.shot("08-publicity-board")
    visitor.page.click('a:has-text("提出异议")')
    visitor.fill({"name": "赵强", "contact": "13800000000", "reason": "本人参与了该成果的样机研制，但未列入成果完成人名单。"})
    visitor.page.click('[data-testid="file-objection"]')
    receipt = visitor.page.text_content('[data-testid="receipt"]')
    assert receipt.startswith("YY")
    visitor.shot("09-objection-receipt")
    visitor.close()

    # tto1 dismisses it
    tto.open_task("handle_objection")
    assert "未列入成果完成人名单" in tto.page.text_content('[data-testid="objection"]')
    tto.shot("10-objection-handling")
    tto.fill({"decision": "dismiss", "reasoning": "经核查，异议人所述情况与事实不符。"})
    tto.submit()

    # the 15-day term passes (the server thread shares this process's clock)
    with freeze_time(clock.now() + timedelta(days=16), tick=True):
        assert driver.tick() >= 1
    assert driver.status(int(app_url.rsplit("/", 1)[1])) == "agreement"

    tto.open_task("agreement_terms")
    tto.fill({"inventor_income_percent": 80, "tto_income_percent": 5,
              "income_distribution": "转化净收益的80%归成果完成人团队，5%作为技术转移机构运行经费。",
              "conversion_decision_mechanism": "由团队提出，经单位备案后实施。", "conversion_period_months": 36,
              "cost_sharing": "转化费用由团队承担。", "ip_maintenance_fees": "专利年费由团队承担。",
              "rights_and_duties": "团队负责转化并每年报告进展。", "dispute_resolution": "提交深圳国际仲裁院仲裁。"})
    tto.submit()

    # researcher1 and signer1 sign with their passwords
    r1.open_task("sign_representative")
    sha = r1.page.text_content('[data-testid="agreement-sha256"]')
    assert len(sha) == 64
    r1.shot("11-sign-representative")
    r1.fill({"decision": "sign", "password": "demo-pass-2026"})
    r1.submit()
    signer = Person(browser, base).login("signer1")
    signer.open_task("sign_unit")
    signer.fill({"decision": "sign", "password": "demo-pass-2026"})
    signer.submit()
    signer.close()

    # tto1 records the IP transfer and completes
    tto.open_task("ip_transfer")
    tto.fill({"filing_type": "ownership_change", "office": "国家知识产权局", "filing_number": "BG2026110001",
              "filing_date": today, "note": "专利权人变更为单位与团队按份共有。"})
    tto.submit()
    tto.open_task("complete_archive")
    tto.fill({"confirm": True, "archive_note": "纸质材料已归档。"})
    tto.submit()
    tto.go(app_url)
    assert "已完成" in tto.page.text_content(".page-head")
    tto.close()

    # auditor1 downloads the final agreement: the bytes hash to the ETag
    auditor = Person(browser, base).login("auditor1")
    auditor.go("/audit")
    assert number in auditor.page.text_content('[data-testid="audit-table"]')
    auditor.shot("12-audit-list")
    auditor.go(app_url)
    auditor.page.wait_for_selector('#diagram[data-rendered="true"]')
    assert auditor.page.locator("form[method=post]").count() == 1  # sign-out only
    auditor.shot("13-application-completed-auditor")
    href = auditor.page.get_attribute('[data-kind="agreement_final"]', "href")
    response = auditor.context.request.get(base + href)
    body = response.body()
    assert response.status == 200 and body.startswith(b"%PDF")
    assert hashlib.sha256(body).hexdigest() == response.headers["etag"].strip('"')
    auditor.close()

    r1.go("/notifications")
    r1.shot("14-notifications")
    r1.go("/locale/en?next=/applications")
    assert "Applications" in r1.page.text_content("nav.mainnav")
    r1.shot("15-applications-english")
    r1.close()

    admin = Person(browser, base).login("admin")
    admin.go("/admin/users")
    admin.shot("16-admin-users")
    admin.go("/admin/processes")
    admin.shot("17-admin-processes")
    admin.close()
