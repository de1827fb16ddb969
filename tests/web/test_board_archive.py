"""The board's archive of past notices (finding 5), the receipt look-up (finding 6) and forms that
show every error at once, next to its field, with a summary linking to each."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests import board_seed
from workflows import clock
from workflows.models import PublicityNotice

from .conftest import form_fields, login, post_form, text_of

OBJECTION = {"name": "赵强", "contact": "138 0000 0000", "reason": "本人参与了该成果的样机研制，但未列入成果完成人名单。"}


@pytest.fixture
def archive(driver):
    return board_seed.past_notices(driver)


def test_the_archive_lists_ended_notices_of_every_kind_with_their_outcome(client, archive):
    html = client.get("/publicity/archive").get_data(as_text=True)
    outcomes = re.findall(r'data-testid="archived-notice" data-outcome="(\w+)"', html)
    assert outcomes == ["no_objection", "dismissed", "upheld", "restarted", "handling"]
    text = text_of(client.get("/publicity/archive"))
    for expected in ("公示期满，无异议", "公示期满，异议经核查不成立", "异议成立，公示未通过", "异议经核查，已重新公示",
                     "公示期满，异议处理中", "协议定价公示", "领导人员奖励公示", "收到异议2件", "共5项"):
        assert expected in text, expected
    assert "某人" not in text and "13900000000" not in text  # objectors are never on the board
    assert "一种储能材料" not in text_of(client.get("/publicity"))  # the current board keeps open ones only


def test_the_archives_first_page_takes_three_statements_whatever_its_rows(app, client, archive):
    """The count, the page, the objections' counts: not the representatives, their roles or the
    teams of the notices listed (five statements before, for a page the public reads)."""
    from .test_lists import counted
    for url in ("/publicity/archive", "/api/v1/publicity/archive"):
        with counted(app) as statements:
            assert client.get(url).status_code == 200
        selects = [sql for sql in statements if sql.startswith("SELECT")]
        assert len(selects) == 3, (url, selects)
        assert not any("role_grants" in sql or "application_members" in sql for sql in selects), url


def test_the_archive_searches_filters_sorts_and_pages(client, archive):
    assert "共1项" in text_of(client.get("/publicity/archive?q=量子"))
    assert "共1项" in text_of(client.get("/publicity/archive?kind=price"))
    first = client.get("/publicity/archive?per_page=2").get_data(as_text=True)
    assert "共5条，第1/3页" in text_of(client.get("/publicity/archive?per_page=2")) and 'rel="next"' in first
    last = text_of(client.get("/publicity/archive?per_page=2&page=3"))
    assert "一种通信协议" in last and "一种储能材料" not in last
    oldest_first = client.get("/publicity/archive?sort=ends").get_data(as_text=True)
    assert oldest_first.index("一种通信协议") < oldest_first.index("一种储能材料")


def test_a_notice_address_shows_the_archived_notice_after_its_term(client, driver):
    """The address printed on the notice PDF and in mail answers for ever, with the outcome."""
    app_id = driver.to_publicity()
    with driver.sessions() as s:
        notice = s.query(PublicityNotice).filter_by(application_id=app_id).one()
        notice_id, ends_at = notice.id, notice.ends_at
    driver.pass_publicity(app_id)
    with freeze_time(ends_at + timedelta(days=30)):
        page = client.get(f"/publicity/{notice_id}")
        assert page.status_code == 200
        text = text_of(page)
        assert "已归档" in text and "公示期满，无异议" in text and "一种低功耗图像识别芯片架构" in text
        assert 'id="objection"' not in page.get_data(as_text=True)  # no objection form any more
        assert client.get(f"/publicity/{notice_id}/notice.pdf").data.startswith(b"%PDF")
        refused = client.post(f"/publicity/{notice_id}/objection", data=OBJECTION)
        assert refused.status_code == 409 and "公示期已结束，不再受理异议" in text_of(refused)
        assert "一种低功耗图像识别芯片架构" in text_of(client.get("/publicity/archive"))
    assert client.get("/publicity/999999").status_code == 404


def _file(client, notice_id: int) -> str:
    response = client.post(f"/publicity/{notice_id}/objection", data=OBJECTION)
    assert response.status_code == 302, text_of(response)[:300]
    return response.location.rsplit("/", 1)[1]


def _open_notice_id(driver, app_id: int) -> int:
    with driver.sessions() as s:
        return s.query(PublicityNotice.id).filter_by(application_id=app_id).scalar()


def test_a_receipt_is_looked_up_with_the_contact_given_when_objecting(app, client, driver):
    posted = driver.to_publicity()
    receipt = _file(client, _open_notice_id(driver, posted))
    stranger = app.test_client()
    # the number alone shows nothing: it leads to the look-up box
    direct = stranger.get(f"/publicity/receipt/{receipt}")
    assert direct.status_code == 302 and "/publicity/lookup" in direct.location
    wrong = stranger.post("/publicity/lookup", data={"receipt": receipt, "contact": "13811111111"})
    assert wrong.status_code == 404 and "回执编号或联系方式不正确" in text_of(wrong)
    unknown = stranger.post("/publicity/lookup", data={"receipt": "YY20260101-00000000", "contact": "13800000000"})
    assert text_of(unknown).count("回执编号或联系方式不正确") == text_of(wrong).count("回执编号或联系方式不正确")
    found = stranger.post("/publicity/lookup", data={"receipt": receipt.lower(), "contact": "138-0000-0000"})
    text = text_of(found)
    assert found.status_code == 200 and receipt in text and "待处理" in text and "公示中" in text
    assert "赵强" not in text and "13800000000" not in text and "138 0000 0000" not in text
    missing = stranger.post("/publicity/lookup", data={"receipt": "", "contact": ""})
    assert missing.status_code == 422 and "请填写回执编号" in text_of(missing)
    assert "请填写提交异议时留下的联系方式" in text_of(missing)


def test_receipt_guesses_are_throttled_like_sign_in(client, archive):
    receipt = f"YYTEST-{archive[1]}-0"  # filed with 13900000000
    for i in range(10):  # numbers tried one after another from one address
        guess = client.post("/publicity/lookup", data={"receipt": f"YY20260101-{i:08X}", "contact": "13900000000"})
        assert guess.status_code == 404
    locked = client.post("/publicity/lookup", data={"receipt": receipt, "contact": "13900000000"})
    assert locked.status_code == 429 and "已暂时锁定" in text_of(locked)
    with freeze_time(clock.now() + timedelta(minutes=2)):
        found = client.post("/publicity/lookup", data={"receipt": receipt, "contact": "13900000000"})
        assert found.status_code == 200 and "已处理：异议不成立" in text_of(found)


def test_the_objection_form_shows_every_error_at_once_next_to_its_field(client, driver):
    notice_id = board_seed.open_notice(driver)
    response = client.post(f"/publicity/{notice_id}/objection", data={
        "name": "", "contact": "", "reason": "太短", "attachment": (io.BytesIO(b"not a document"), "x.txt")})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    summary = html.split('data-testid="error-summary"', 1)[1].split("</div>", 1)[0]
    links = re.findall(r'href="#([\w-]+)"', summary)
    assert links == ["f-name", "f-contact", "f-reason", "f-attachment"], summary
    for target in links:
        assert f'id="{target}"' in html
    for field, message in (("name", "异议人姓名或单位为必填项"), ("contact", "联系方式为必填项"),
                           ("reason", "异议理由至少10个字"), ("attachment", "只能上传PDF、PNG或JPEG文件")):
        assert re.search(f'data-error-for="{field}">{message}<', html), field
    assert "请修改以下4处问题后再提交" in text_of(response) and 'value="' in html


def test_the_task_form_summary_links_to_every_failing_field(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    task = driver.task_id(app_id, "draft")
    fields = [(k, v) for k, v in form_fields({"team_share": "八十", "members": [{"username": "researcher1", "share": "x"}]})]
    response = post_form(client, f"/tasks/{task}", fields, action="submit")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    summary = html.split('data-testid="error-summary"', 1)[1].split("</div>", 1)[0]
    links = re.findall(r'href="#([\w-]+)"', summary)
    assert len(links) >= 4 and "f-team_share" in links and "f-members-0-share" in links, links
    for target in links:
        assert f'id="{target}"' in html, target
    positions = [html.index(f'id="{target}"') for target in dict.fromkeys(links)]
    assert positions == sorted(positions), links  # the summary reads in the form's order
    messages = re.findall(r"<li><a [^>]*>([^<]+)</a></li>", summary)
    for message in messages:  # each also next to its field
        assert html.count(f">{message}<") >= 2, message


@pytest.mark.parametrize(("value", "shown"), [("1234567.5", "1,234,567.50"), ("0", "0.00"), (88000, "88,000.00"),
                                             ("12.345", "12.35"), (None, ""), ("待定", "待定")])
def test_money_is_written_the_zh_cn_way(value, shown):
    from webapp.filters import money
    assert money(value) == shown


def test_the_archive_and_the_look_up_in_english(client, archive):
    client.get("/locale/en")
    for path in ("/publicity/archive", "/publicity/lookup", f"/publicity/{archive[2]}"):
        page = text_of(client.get(path))
        assert "：" not in page and "（" not in page and "）" not in page, (path, page[:400])
    assert "Objection upheld, notice not passed" in text_of(client.get("/publicity/archive"))
    assert "Past notices" in text_of(client.get("/publicity/lookup"))


def test_money_on_past_notices_is_written_the_zh_cn_way(client, archive):
    assert "1,234,567.50 元" in text_of(client.get(f"/publicity/{archive[2]}"))   # the agreed price
    rewards = text_of(client.get(f"/publicity/{archive[3]}"))
    assert "880,000.00 元" in rewards and "88,000.00" in rewards
