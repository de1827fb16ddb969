"""The generic schema form: which input each node of a task's JSON Schema becomes, and the
posted fields parsed back into the JSON the schema describes."""
from __future__ import annotations

import re
from typing import Any

from flask import Flask

from .extensions import gettext as _

TEXTAREA_FROM = 200  # a string field allowing more characters than this gets a textarea
EXAMPLE_MAX = 60     # longer example values are not shown as a hint


def is_attachment_list(node: dict[str, Any]) -> bool:
    return node.get("type") == "array" and "document_id" in node.get("items", {}).get("properties", {})


def widget(name: str, node: dict[str, Any], required: bool, top: bool) -> str:  # noqa: PLR0911 (one return per widget)
    """Which input a schema node becomes; the template switches on this."""
    kind = node.get("type")
    if "const" in node:
        return "confirm"
    if kind == "object":
        return "fieldset"
    if kind == "array":
        items = node.get("items", {})
        if is_attachment_list(node):
            return "attachments"
        if items.get("type") == "object":
            return "table"
        return "checkboxes" if "enum" in items else "lines"
    if kind == "boolean":
        return "yesno" if (top and required) else "checkbox"
    if kind == "integer" and name.endswith("document_id"):
        return "document"
    if kind in ("integer", "number"):
        return "number"
    if "enum" in node:
        return "select"
    if node.get("format") == "password":
        return "password"
    if node.get("format") == "date":
        return "date"
    return "textarea" if node.get("maxLength", 0) > TEXTAREA_FROM else "text"


def parse_form(schema: dict[str, Any], form) -> dict[str, Any]:
    """Posted fields (named by dotted path) → the JSON the schema describes; bad numbers stay
    strings so the validator names the field and the person sees what they typed."""
    value = _parse_object(schema, form, "")
    return value if isinstance(value, dict) else {}


_MISSING = object()


def _parse(node: dict[str, Any], form, name: str, required: bool = False, top: bool = False) -> Any:  # noqa: PLR0911 (one return per node type)
    kind = node.get("type")
    if "const" in node:
        return True if form.get(name) else _MISSING
    if kind == "boolean":
        if widget(name, node, required, top) == "yesno":
            return {"true": True, "false": False}.get(form.get(name), _MISSING)
        return form.get(name) not in (None, "")
    if kind == "object":
        return _parse_object(node, form, name + ".")
    if kind == "array":
        return _parse_array(node, form, name)
    raw = form.get(name, "")
    raw = raw if node.get("format") == "password" else raw.strip()
    if raw == "":
        return _MISSING
    if kind in ("integer", "number"):
        return _number(raw, kind)
    return raw


def _number(raw: str, kind: str) -> Any:
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if kind == "number" and re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    return raw


def _parse_object(node: dict[str, Any], form, prefix: str) -> dict[str, Any]:
    result = {}
    required = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        value = _parse(child, form, prefix + key, key in required, prefix == "")
        if value is not _MISSING:
            result[key] = value
    return result


def _parse_array(node: dict[str, Any], form, name: str) -> Any:
    items = node.get("items", {})
    if items.get("type") == "object":
        pattern = re.compile(re.escape(name) + r"\.(\d+)\.")
        rows = sorted({int(m.group(1)) for key in form if (m := pattern.match(key))})
        parsed = [_parse_object(items, form, f"{name}.{i}.") for i in rows]
        return [row for row in parsed if row]
    if "enum" in items:
        return [v for v in form.getlist(name) if v in items["enum"]]
    return [line.strip() for line in form.get(name, "").splitlines() if line.strip()]


def enum_pairs(node: dict[str, Any]) -> list[tuple[Any, str]]:
    values = node.get("enum", [])
    names = node.get("enumNames", [])
    return [(v, names[i] if i < len(names) else str(v)) for i, v in enumerate(values)]


def example_at(schema: dict[str, Any], path: str) -> str:
    """The schema's first example at a dotted path, used as a placeholder."""
    value: Any = (schema.get("examples") or [{}])[0]
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return ""
    return _("例如：%(v)s", v=value) if isinstance(value, str) and value and len(value) <= EXAMPLE_MAX else ""


def register_form_helpers(app: Flask) -> None:
    app.add_template_global(widget)
    app.add_template_global(enum_pairs)
    app.add_template_global(example_at)
