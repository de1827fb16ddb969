"""The English catalogue covers the task forms: every title, description and enumNames string
of forms/*.schema.json (which the pages pass through gettext) has an English translation in the
compiled catalogue, and a task page switched to English shows English labels."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.support import Translations

import webapp
from workflows.process import forms
from workflows.process.forms import FORMS_DIR

from .conftest import login

TRANSLATIONS = Path(webapp.__file__).resolve().parent / "translations"
SCHEMAS = sorted(FORMS_DIR.glob("*.schema.json"))
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\uff0c\uff1a\uff1b\u3001\u3002]")
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
SUBSCHEMAS = ("items", "additionalProperties", "contains", "not", "if", "then", "else")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def ui_strings(node: Any) -> list[str]:
    """The strings the UI translates from one schema node and everything nested under it.
    Walks schema keywords only, so a property that happens to be named "title" or
    "description" (as in the achievement object) is entered as a subschema, not read as text."""
    if not isinstance(node, dict):
        return []
    found = [node[key] for key in ("title", "description") if isinstance(node.get(key), str) and node[key]]
    found += [text for text in node.get("enumNames", []) if isinstance(text, str) and text]
    for key in SUBSCHEMA_MAPS:
        for child in (node.get(key) or {}).values():
            found += ui_strings(child)
    for key in SUBSCHEMAS:
        found += ui_strings(node.get(key))
    for key in SUBSCHEMA_LISTS:
        for child in node.get(key) or []:
            found += ui_strings(child)
    return found


@pytest.fixture(scope="module")
def english() -> Translations:
    translations = Translations.load(str(TRANSLATIONS), ["en"])
    assert isinstance(translations, Translations), "no compiled English catalogue (messages.mo)"
    return translations


def test_the_walk_reaches_nested_objects_array_items_and_enum_names():
    strings = ui_strings(forms.load_schema("ownership_draft.schema.json"))  # shared parts written out
    assert "赋予所有权申请" in strings                 # schema title
    assert "成果名称" in strings                       # nested object property
    assert "内部收益分配比例（%）" in strings           # array of objects → item property
    assert "情形" in strings and "国家秘密" in strings  # array items title and enumNames
    assert "按份共有" in strings                       # top-level enumNames


@pytest.mark.parametrize("schema_path", SCHEMAS, ids=lambda p: p.name)
def test_every_form_string_has_an_english_translation(schema_path, english):
    strings = ui_strings(forms.load_schema(schema_path.name))
    assert strings, f"{schema_path.name} has no translatable strings"
    untranslated = [s for s in dict.fromkeys(strings) if english.gettext(s) == s or not english.gettext(s).strip()]
    assert not untranslated, f"{schema_path.name}: no English for {untranslated}"
    still_chinese = {s: english.gettext(s) for s in strings if CJK.search(english.gettext(s))}
    assert not still_chinese, f"{schema_path.name}: English text still has Chinese: {still_chinese}"


def test_the_compiled_catalogue_matches_the_po_file():
    """messages.mo was recompiled after messages.po was edited."""
    folder = TRANSLATIONS / "en" / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as po_file, open(folder / "messages.mo", "rb") as mo_file:
        po, mo = read_po(po_file), read_mo(mo_file)
    expected = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    compiled = {m.id: m.string for m in mo if m.id}
    assert compiled == expected


def test_task_form_in_english_shows_english_labels(client, driver):
    app_id = driver.start()
    login(client, "researcher1")
    url = f"/tasks/{driver.task_id(app_id, 'draft', 'researcher1')}"
    assert "成果名称" in client.get(url).get_data(as_text=True)     # Chinese by default
    client.get(f"/locale/en?next={url}")
    html = client.get(url).get_data(as_text=True)
    form = html[html.index("data-task-form"):html.index("</form>", html.index("data-task-form"))]
    assert re.search(r'<label for="f-achievement-title">\s*Achievement\b', form)  # the achievement title field
    assert "<h2>Application for ownership grant</h2>" in form
    assert "<legend>Scientific and technological achievement</legend>" in form
    assert re.search(r'<option value="patent"\s*>Patent right</option>', form)   # enumNames
    assert re.search(r'<option value="shares"\s*>Co-ownership by shares</option>', form)
    assert re.search(r"<th>Internal income share \(%\)", form)                    # "%" kept literally
    assert re.search(r'value="state_secret"\s*>\s*State secrets</label>', form)  # array items enumNames
    for chinese in ("成果名称", "科技成果", "专利权", "按份共有", "内部收益分配比例", "国家秘密", "赋予所有权申请"):
        assert chinese not in form, chinese
