"""The application page as the single place to look (issue 11, findings 1, 2, 4, 10), at 1280 px
and on a 390 px phone: an application under publicity after an objection was handled, with two
draft revisions and an upload never saved in a form; and a task form. Screenshots in
tests/artifacts/screens/app-*.png; no element may overflow the page sideways."""
from __future__ import annotations

import pytest

from tests.driver import example
from workflows import publicity
from workflows.documents import uploads
from workflows.models import PublicityNotice
from workflows.process import engine

from .conftest import Person, assert_no_horizontal_overflow

pytestmark = pytest.mark.browser
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def _upload(driver, app_id: int) -> int:
    return driver.run(lambda s: uploads.accept(s, driver.app(app_id), "sample.pdf", PDF,
                                               driver.user(s, "researcher1")).id)


def _under_publicity(driver) -> int:
    """Two draft revisions (returned once at review) with labelled attachments, one upload never
    saved, publicity with two objections: one dismissed, one open."""
    app_id = driver.start()
    patent, report, _never_saved = (_upload(driver, app_id) for _ in range(3))
    draft = driver.draft(app_id, attachments=[{"document_id": patent, "label": "专利证书"}])
    driver.consent_all(app_id)
    driver.review(app_id, decision="return")
    draft["achievement"]["description"] = "面向边缘设备的低功耗图像识别芯片架构（第二版，补充检测数据）。"
    draft["attachments"] = [{"document_id": patent, "label": "专利证书"}, {"document_id": report, "label": "检测报告"}]
    driver.complete(app_id, "draft", "researcher1", draft)
    driver.consent_all(app_id)
    driver.review(app_id)
    driver.decide(app_id)
    notice_id = driver.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)
    for client in ("c1", "c2"):
        driver.run(lambda s, c=client: publicity.file_objection(s, notice_id, example("objection"), c))
    first = driver.task_id(app_id, "handle_objection")
    driver.run(lambda s: engine.complete_task(s, driver.user(s, "tto1"), first,
                                              {"decision": "dismiss", "reasoning": "经核实，异议人未参与研制。"}))
    return app_id


def _open(person: Person, path: str, size: tuple[int, int]):
    person.page.set_viewport_size({"width": size[0], "height": size[1]})
    page = person.go(path)
    page.wait_for_selector('#diagram[data-rendered="true"]')
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_application_under_publicity(browser, live, driver, width):
    base, _ = live
    app_id = _under_publicity(driver)
    size = WIDTHS[width]
    tto = Person(browser, base).login("tto1")
    page = _open(tto, f"/applications/{app_id}", size)
    tto.shot(f"app-publicity-tto-{width}")
    assert_no_horizontal_overflow(page)

    # the filed content, latest revision, with its selector; every member with a share (finding 2)
    assert page.locator('[data-testid="revisions"] a').count() == 2
    assert "第2次提交" in page.text_content('[data-testid="revision-meta"]')
    assert "第二版" in page.text_content('[data-testid="filed"]')
    team = page.text_content('[data-testid="team"]')
    assert all(f"{name} {share}%" in " ".join(team.split()) for name, share in (("李明", 50), ("王芳", 30), ("张伟", 20)))

    # documents by purpose, labelled; the upload no form names is not listed (finding 10)
    docs = page.locator('[data-testid="documents"]')
    assert [h.strip() for h in docs.locator("h3").all_text_contents()] == ["单位决策记录", "公示文件", "申请附件"]
    links = docs.locator('a[data-kind="attachment"]').all_text_contents()
    assert links == ["专利证书", "检测报告"]

    # where it waits and for whom; the objection round with the objector for the office only
    assert "处理异议" in page.text_content('[data-testid="waiting"]')
    assert page.locator('[data-testid="objection"]').count() == 2
    assert page.locator('[data-testid="objector"]').count() == 2

    # the diagram: the running 公示 call activity highlighted, labels legible at desktop width (finding 4)
    assert page.locator('.djs-element.step-current[data-element-id="publicity"]').count() == 1
    assert page.locator('.djs-element.step-done[data-element-id="unit_decision"]').count() == 1
    if width == "desktop":
        zoom = float(page.get_attribute("#diagram", "data-zoom-level"))
        assert zoom >= 0.85
        label = page.locator('.djs-element[data-element-id="publicity"] text').first.bounding_box()
        assert label and label["height"] >= 10
        box = page.locator("#diagram").bounding_box()
        assert box["x"] <= label["x"] and label["x"] + label["width"] <= box["x"] + box["width"]
        page.click('[data-zoom="in"]')
        assert float(page.get_attribute("#diagram", "data-zoom-level")) > zoom
        before = page.locator('.djs-element[data-element-id="publicity"]').bounding_box()["x"]
        page.click('[data-pan="right"]')
        assert page.locator('.djs-element[data-element-id="publicity"]').bounding_box()["x"] < before
        page.click('[data-zoom="current"]')
        assert float(page.get_attribute("#diagram", "data-zoom-level")) == zoom

    # an earlier revision is one click away
    page.click('[data-testid="revisions"] a[data-revision="1"]')
    page.wait_for_selector('#diagram[data-rendered="true"]')
    assert "第1次提交" in page.text_content('[data-testid="revision-meta"]')
    assert "第二版" not in page.text_content('[data-testid="filed"]')
    assert page.locator('[data-testid="documents"] a[data-kind="attachment"]').count() == 2
    tto.close()

    # the team sees the objections' reasons but not who objected
    r1 = Person(browser, base).login("researcher1")
    page = _open(r1, f"/applications/{app_id}", size)
    r1.shot(f"app-publicity-team-{width}")
    assert_no_horizontal_overflow(page)
    assert page.locator('[data-testid="objection"]').count() == 2
    assert page.locator('[data-testid="objector"]').count() == 0
    assert "赵强" not in page.text_content("body")
    r1.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_task_forms_fit(browser, live, driver, width):
    base, _ = live
    app_id = _under_publicity(driver)
    size = WIDTHS[width]
    tto = Person(browser, base).login("tto1")
    tto.page.set_viewport_size({"width": size[0], "height": size[1]})
    page = tto.go(f"/tasks/{driver.task_id(app_id, 'handle_objection')}")
    page.wait_for_selector("form[data-task-form]")
    tto.shot(f"app-task-objection-{width}")
    assert_no_horizontal_overflow(page)
    tto.close()

    r1 = Person(browser, base).login("researcher1")
    r1.page.set_viewport_size({"width": size[0], "height": size[1]})
    draft_id = driver.task_id(driver.start(), "draft")
    page = r1.go(f"/tasks/{draft_id}")
    page.wait_for_selector("form[data-task-form]")
    r1.shot(f"app-task-draft-{width}")
    assert_no_horizontal_overflow(page)
    r1.close()
