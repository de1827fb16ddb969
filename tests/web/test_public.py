"""The public publicity board: readable without an account, objections with a receipt."""
from __future__ import annotations

import io
import re

import pytest

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
