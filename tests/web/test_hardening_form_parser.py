"""Property-based tests of the generic form parser (webapp/form_widgets.parse_form):
whatever a browser or an attacker posts, parsing never raises, always gives a JSON object,
only keys the schema names, and turns the form the UI renders for a value back into that value."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from webapp.form_widgets import parse_form
from workflows.process import forms

from .conftest import form_fields

BOUNDED = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = ["ownership_draft", "use_right_draft", "review", "unit_decision", "objection", "ownership_terms",
           "ip_transfer", "consent"]
names = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["achievement.title", "members.0.username", "members.99999999999999999999.share", "attachments.0.document_id",
     "attachments.-1.document_id", "members..share", "members.0", "decision", "password", "ownership_mode"])
values = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["true", "false", "1", "-0", "1e309", "NaN", "99999999999999999999999", "  7 ", "\x00", "3.5", ""])
posted = st.lists(st.tuples(names, values), max_size=40).map(MultiDict)


def _schema(name: str) -> dict:
    return forms.load_schema(f"{name}.schema.json")


def _keys_within(value, node) -> bool:
    """Every key of the parsed value is a property of its schema node, at every depth."""
    if isinstance(value, dict):
        props = node.get("properties", {})
        return all(k in props and _keys_within(v, props[k]) for k, v in value.items())
    if isinstance(value, list):
        return all(_keys_within(v, node.get("items", {})) for v in value)
    return True


@BOUNDED
@given(name=st.sampled_from(SCHEMAS), form=posted)
def test_any_posted_form_parses_to_an_object_the_schema_names(name, form):
    schema = _schema(name)
    parsed = parse_form(schema, form)
    assert isinstance(parsed, dict)
    assert _keys_within(parsed, schema)
    json.dumps(parsed)  # plain JSON: what the engine stores


@BOUNDED
@given(name=st.sampled_from(SCHEMAS), form=posted)
def test_parsing_never_raises_and_the_validator_answers_in_words(name, form):
    """The validator either accepts or names fields — it never crashes on what the parser gives."""
    try:
        forms.validate(f"{name}.schema.json", parse_form(_schema(name), form))
    except Exception as exc:
        # either outcome is allowed, so pytest.raises does not fit (PT017)
        assert type(exc).__name__ == "ValidationFailed", repr(exc)  # noqa: PT017
        assert exc.errors and all(e.get("message") for e in exc.errors)  # noqa: PT017


@settings(max_examples=1, database=None)
@given(name=st.sampled_from(SCHEMAS))
def test_the_schema_example_survives_the_round_trip(name):
    """What the page would post for a schema's example parses back to the example."""
    schema = _schema(name)
    example = schema["examples"][0]
    fields = form_fields(example)
    assert parse_form(schema, MultiDict(fields)) == example


@BOUNDED
@given(rows=st.lists(st.integers(min_value=0, max_value=10**30), max_size=8, unique=True))
def test_row_numbers_of_any_size_keep_their_order_and_never_overflow(rows):
    schema = _schema("ownership_draft")
    form = MultiDict([(f"attachments.{i}.document_id", str(n)) for n, i in enumerate(rows)])
    parsed = parse_form(schema, form).get("attachments", [])
    assert [row["document_id"] for row in parsed] == [n for _i, n in sorted(zip(rows, range(len(rows)), strict=True))]
