"""The public publicity board: readable without an account, objections with a receipt."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from .conftest import login, text_of


@pytest.fixture
def posted(driver):
    return driver.to_publicity()


def _notice_id(client) -> int:
    html = client.get("/publicity").get_data(as_text=True)
    return int(re.search(r'href="/publicity/(\d+)"', html).group(1))


def test_board_shows_what_the_policy_asks_to_post(client, posted):
    text = text_of(client.get("/publicity"))
    for expected in ("一种低功耗图像识别芯片架构", "深圳示范大学", "按份共有", "80%", "李明、王芳、张伟",
                     "领导人员奖励公示", "副院长，负责实验验证", "现金", "0755-00000001"):
        assert expected in text, expected
    notice = client.get(f"/publicity/{_notice_id(client)}/notice.pdf")
    assert notice.status_code == 200 and notice.data.startswith(b"%PDF")


def test_board_links_the_units_certificate_that_validates_the_signed_notice(client, posted):
    from workflows.evidence import signing
    for page in ("/publicity", f"/publicity/{_notice_id(client)}"):
        html = client.get(page).get_data(as_text=True)
        assert 'href="/api/v1/units/SZDU/certificate"' in html, page
    pem = client.get("/api/v1/units/SZDU/certificate").data
    notice = client.get(f"/publicity/{_notice_id(client)}/notice.pdf").data
    assert signing.problems(notice, [pem]) == []


def test_objection_gets_a_receipt_and_reaches_the_office(client, driver, posted):
    notice = _notice_id(client)
    response = client.post(f"/publicity/{notice}/objection", data={
        "name": "赵强", "contact": "13800000000", "reason": "本人参与了该成果的样机研制，但未列入成果完成人名单。",
        "attachment": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "证明.pdf")})
    assert response.status_code == 302 and "/publicity/receipt/YY" in response.location
    receipt = text_of(client.get(response.location))
    assert "异议已受理" in receipt and "待处理" in receipt and "13800000000" not in receipt
    assert "handle_objection" in driver.steps(posted)
    login(client, "tto1")
    task = driver.task_id(posted, "handle_objection", "tto1")
    page = text_of(client.get(f"/tasks/{task}"))
    assert "本人参与了该成果的样机研制" in page and "下载附件" in page


def test_objection_validation_errors_keep_the_input(client, posted):
    notice = _notice_id(client)
    response = client.post(f"/publicity/{notice}/objection", data={"name": "赵强", "contact": "", "reason": "太短"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "联系方式为必填项" in html and "异议理由至少10个字" in html and 'value="赵强"' in html


def test_unknown_notices_are_not_public(client):
    assert client.get("/publicity/999").status_code == 404
    assert client.post("/publicity/999/objection", data={"name": "x"}).status_code == 404
    # a receipt number alone is no proof of anything: it leads to the look-up (number + contact)
    assert "/publicity/lookup?receipt=nope" in client.get("/publicity/receipt/nope").location


def test_the_board_reads_what_a_notice_posts_only_for_entries_it_has_not_kept(app, client, posted):
    """A kept board entry stands for its notice (a posted notice is never rewritten): the summary's
    JSON is read in one statement for the entries not kept, and not at all once they are."""
    from webapp.blueprints import public

    from .test_lists import counted
    public._ARTICLES.clear()
    for expected_reads in (1, 0):
        with counted(app) as statements:
            text = text_of(client.get("/publicity"))
        assert "一种低功耗图像识别芯片架构" in text and "李明、王芳、张伟" in text
        reads = [sql for sql in statements if "publicity_notices.summary" in sql and not sql.startswith("SELECT count")]
        assert len(reads) == expected_reads, reads
        assert len([sql for sql in statements if sql.startswith("SELECT")]) == 2 + expected_reads, statements


def test_a_posted_notice_is_not_rewritten(driver, posted):
    """The board keeps an entry by its notice's id: what a notice posts is written once."""
    from workflows.models import PublicityNotice
    with driver.sessions() as s:
        notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == posted)).scalar_one()
        assert notice.summary
        with pytest.raises(ValueError, match="not rewritten"):
            notice.summary = {"draft": {"achievement": {"title": "另一个成果"}}}
