"""Engine messages (workflows.i18n.Message) reach English-mode pages in English: every msg()
template in workflows/ has an English translation with the same {placeholders}, and the web
layer translates the template, then formats it with the (themselves translated) parameters."""
from __future__ import annotations

import ast
import html
import re
import string
from pathlib import Path

import pytest
from babel.support import Translations

import webapp
import workflows
from tests.driver import example
from webapp.filters import translate
from workflows.errors import ValidationFailed
from workflows.i18n import Message, msg
from workflows.process import forms

from .conftest import form_fields, login, post_form, text_of

TRANSLATIONS = Path(webapp.__file__).resolve().parent / "translations"
WORKFLOWS = Path(workflows.__file__).resolve().parent
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\uff0c\uff1a\uff1b\u3001\u3002]")


def msg_templates() -> dict[str, str]:
    """Every literal first argument of a msg(...) call under workflows/, with where it is."""
    found: dict[str, str] = {}
    for path in sorted(WORKFLOWS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "msg":
                found.setdefault(node.args[0].value, f"{path.relative_to(WORKFLOWS.parent)}:{node.lineno}")
    return found


def placeholders(text: str) -> set[str]:
    return {field for _literal, field, _spec, _conv in string.Formatter().parse(text) if field is not None}


@pytest.fixture(scope="module")
def english() -> Translations:
    translations = Translations.load(str(TRANSLATIONS), ["en"])
    assert isinstance(translations, Translations), "no compiled English catalogue (messages.mo)"
    return translations


def test_message_is_the_formatted_chinese_text():
    message = msg("文件不得超过{size}MB", size=10)
    assert message == "文件不得超过10MB" and isinstance(message, str)
    assert message.template == "文件不得超过{size}MB" and message.params == {"size": 10}
    assert msg("申请不存在") == "申请不存在" and msg("申请不存在").params == {}
    assert ValidationFailed([{"field": "a", "message": message}]).message == "文件不得超过10MB"


def test_the_walk_finds_the_engine_templates():
    templates = msg_templates()
    assert "用户名或密码错误" in templates                                   # accounts.py
    assert "团队内部收益分配比例合计须为100%，当前为{total}%（§三(一)3）" in templates  # policy.py
    assert "{title}为必填项" in templates                                     # forms.py
    assert "通知不存在" in templates                                         # i18n.msg(...) in notify.py
    assert len(templates) > 150


def test_every_engine_message_has_an_english_translation(english):
    problems = {}
    for template, where in msg_templates().items():
        text = english.gettext(template)
        if text == template or not text.strip():
            problems[where] = f"no English for {template!r}"
        elif placeholders(text) != placeholders(template):
            problems[where] = f"placeholders differ: {template!r} → {text!r}"
        elif CJK.search(text):
            problems[where] = f"English still has Chinese: {text!r}"
    assert not problems, problems


def test_translate_formats_the_translated_template_with_translated_parameters(app):
    title = forms._title_at(forms.load_schema("ownership_draft.schema.json"), ["members", 1, "username"])
    message = msg("{title}为必填项", title=title)
    with app.test_request_context():
        assert translate(message) == message                       # Chinese by default: unchanged
    with app.test_request_context():
        from flask import session
        session["locale"] = "en"
        english_text = translate(message)
        assert english_text.endswith(" is required") and "Row 2" in english_text
        assert not CJK.search(english_text), english_text
        assert translate(msg("文件不得超过{size}MB", size=10)) == "The file must not exceed 10 MB"
        assert translate(Message("没有这条译文{x}", {"x": msg("申请不存在")})) == "没有这条译文The application does not exist"
        assert translate("单位代码已存在") == "This unit code already exists"      # plain str: gettext


def _english_draft(client, driver) -> str:
    app_id = driver.start()
    login(client, "researcher1")
    url = f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"
    client.get(f"/locale/en?next={url}")
    return url


def test_policy_error_on_the_draft_is_shown_in_english(client, driver):
    url = _english_draft(client, driver)
    data = example("ownership_draft")
    data["members"][2]["share"] = 10                    # the shares no longer add up to 100
    data["members"][1]["username"] = "nobody"
    response = post_form(client, url, form_fields(data), action="submit")
    assert response.status_code == 422
    text = html.unescape(text_of(response))
    assert "The team's internal income shares must total 100%; they currently total 90% (§3(1)3)" in text
    assert "Row 2: there is no user “nobody” in the system" in text
    for chinese in ("团队内部收益分配比例", "系统中没有用户", "§三"):
        assert chinese not in text, chinese


def test_schema_error_on_the_draft_is_shown_in_english(client, driver):
    url = _english_draft(client, driver)
    data = example("ownership_draft")
    del data["recipient"]
    data["members"][0]["share"] = "五十"
    response = post_form(client, url, form_fields(data), action="submit")
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert 'data-error-for="recipient">Recipient is required<' in page
    error = re.search(r'data-error-for="members.0.share">([^<]*)<', page).group(1)
    assert "Row 1" in error and not CJK.search(error), error
    assert "为必填项" not in page


def test_engine_refusal_page_is_in_english(client, driver):
    login(client, "researcher1")
    client.get("/locale/en")
    response = client.get("/tasks/999999")
    assert response.status_code == 404
    text = html.unescape(text_of(response))
    assert "The task does not exist" in text
    assert "任务不存在" not in text


def test_api_errors_follow_accept_language(tmp_path, sqlite_template):
    import shutil

    from webapp import create_app
    from workflows import demo
    path = tmp_path / "api.db"
    shutil.copy(sqlite_template, path)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}"})
    try:
        with app.extensions["grants_sessions"]() as session:
            demo.seed(session)
            session.commit()
        client = app.test_client()
        chinese = client.get("/api/v1/me").get_json()["error"]
        english = client.get("/api/v1/me", headers={"Accept-Language": "en"}).get_json()["error"]
        assert "令牌" in chinese
        assert "token" in english.lower() and "令牌" not in english
    finally:
        app.extensions["grants_engine"].dispose()
