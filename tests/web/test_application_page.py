"""The application page as the single place to look (issue 11): documents by purpose with unsaved
uploads hidden (finding 10), the filed content of every revision, where it waits and for whom,
publicity rounds with objections and who objected only for those who may know."""
from __future__ import annotations

import html
import json
import re

from tests.driver import example
from workflows import publicity
from workflows.documents import uploads
from workflows.models import PublicityNotice
from workflows.process import engine

from .conftest import login, text_of

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(driver, app_id: int, name: str) -> int:
    return driver.run(lambda s: uploads.accept(s, driver.app(app_id), name, PDF, driver.user(s, "researcher1")).id)


def _page(client, app_id: int, query: str = "") -> str:
    response = client.get(f"/applications/{app_id}{query}")
    assert response.status_code == 200
    return text_of(response)


def test_documents_are_grouped_and_unsaved_uploads_hidden(client, driver):
    app_id = driver.start()
    saved, pending = _upload(driver, app_id, "证书扫描.pdf"), _upload(driver, app_id, "未保存的草稿.pdf")
    login(client, "researcher1")
    assert "未保存的草稿.pdf" not in _page(client, app_id)
    driver.draft(app_id, attachments=[{"document_id": saved, "label": "专利证书"}])
    html = client.get(f"/applications/{app_id}").get_data(as_text=True)
    docs = html[html.index('data-testid="documents"'):]
    assert "申请附件" in docs and "专利证书" in docs and "证书扫描.pdf" in docs
    assert "未保存的草稿.pdf" not in html and f"/documents/{pending}" not in html
    assert f"/documents/{saved}" in docs


def test_every_revision_of_the_filed_content_can_be_chosen(client, driver):
    app_id = driver.start()
    draft = driver.draft(app_id)
    driver.consent_all(app_id)
    driver.review(app_id, decision="return")
    draft["achievement"]["title"] = "一种低功耗图像识别芯片架构（修订）"
    driver.complete(app_id, "draft", "researcher1", draft)
    login(client, "researcher1")
    latest = _page(client, app_id)
    assert "第2次提交 · 李明" in latest and "提交版本： 第1次 第2次" in latest
    assert "（修订）" in latest.split("申请内容", 1)[1]
    first = _page(client, app_id, "?revision=1")
    assert "第1次提交" in first and "这是较早的版本；最新为第2次提交。" in first
    assert "（修订）" not in first.split("申请内容", 1)[1].split("各环节提交内容", 1)[0]
    assert "第2次提交" in _page(client, app_id, "?revision=99")  # unknown: the latest
    assert "成果转化部门审查 · 第1次 · 刘洋" in latest  # the other steps' submissions too


def test_where_it_waits_and_for_whom(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    login(client, "researcher1")
    consenting = _page(client, app_id)  # one personal task per member
    assert all(f"处理人：{name}" in consenting for name in ("李明", "王芳", "张伟"))
    driver.consent_all(app_id)
    page = _page(client, app_id)
    assert "成果转化部门审查" in page and "待认领：成果转化部门经办人（刘洋）" in page


def _under_publicity_with_objection(driver) -> int:
    app_id = driver.to_publicity()
    notice_id = driver.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)
    driver.run(lambda s: publicity.file_objection(s, notice_id, example("objection"), "c1"))
    task_id = driver.task_id(app_id, "handle_objection")
    driver.run(lambda s: engine.complete_task(s, driver.user(s, "tto1"), task_id,
                                              {"decision": "dismiss", "reasoning": "经核实，异议人未参与研制。"}))
    return app_id


def test_publicity_rounds_show_objections_and_the_objector_only_to_those_allowed(client, driver):
    app_id = _under_publicity_with_objection(driver)
    seen = {}
    for who in ("tto1", "auditor1", "researcher1", "decider1"):
        login(client, who)
        seen[who] = _page(client, app_id)
        client.post("/logout")
    for who, page in seen.items():
        assert "第1轮：" in page and "公示中" in page and "不成立" in page
        assert "本人参与了该成果的样机研制" in page and "经核实，异议人未参与研制。" in page
        assert ("赵强" in page) == (who in ("tto1", "auditor1")), who
        # finding 2: the filed content and every member's share stay during publicity
        assert "申请内容" in page and "李明 50%" in page and "张伟 20%" in page
    # finding 4: the diagram marks the 公示 call activity current while it runs, done after
    login(client, "tto1")
    completed, current = _trail(client, app_id)
    assert "publicity" in current and "publicity" not in completed and "unit_decision" in completed
    driver.pass_publicity(app_id)
    completed, current = _trail(client, app_id)
    assert "publicity" in completed and "publicity" not in current and "agreement_terms" in current


def _trail(client, app_id: int) -> tuple[list, list]:
    """The diagram's finished and current elements as the page hands them to diagram.js."""
    page = client.get(f"/applications/{app_id}").get_data(as_text=True)
    found = [json.loads(html.unescape(re.search(f'data-{k}="([^"]*)"', page).group(1))) for k in ("completed", "current")]
    return found[0], found[1]


def test_english_application_page_has_english_punctuation(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "researcher1")
    client.get("/locale/en")
    page = _page(client, app_id)
    assert "To be claimed by:" in page and "Submission 1" in page
    assert "：" not in page and "（" not in page and "）" not in page
