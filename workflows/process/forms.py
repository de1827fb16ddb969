"""Task forms: JSON Schemas in forms/, validated with jsonschema, errors named in Chinese."""
from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from workflows.errors import ValidationFailed
from workflows.i18n import Message, msg

FORMS_DIR = Path(__file__).resolve().parents[2] / "forms"
DEFS_DIR = FORMS_DIR / "defs"   # parts several forms share, e.g. defs/grant_draft.json#/$defs/members


@cache
def load_schema(filename: str) -> dict[str, Any]:
    """A form's schema with its shared parts (`$ref` into forms/defs/) written out in place, so
    the validator, the form renderer and the documents all read one complete schema."""
    path = (FORMS_DIR / filename).resolve()
    if path.parent != FORMS_DIR or not path.is_file():
        raise FileNotFoundError(filename)
    schema: dict[str, Any] = _inline(json.loads(path.read_text(encoding="utf-8")))
    return schema


@cache
def _shared(filename: str) -> dict[str, Any]:
    path = (FORMS_DIR / filename).resolve()
    if path.parent != DEFS_DIR or not path.is_file():
        raise FileNotFoundError(filename)
    shared: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return shared


def _inline(node: Any) -> Any:
    """Replace {"$ref": "defs/FILE.json#/$defs/NAME", ...} by that part (keywords beside the
    $ref win); references inside one form (#/$defs/...) stay for the validator to follow."""
    if isinstance(node, list):
        return [_inline(item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("defs/"):
        filename, _sep, pointer = ref.partition("#")
        target: Any = _shared(filename)
        for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
            target = target[part]
        return _inline({**target, **{k: v for k, v in node.items() if k != "$ref"}})
    return {key: _inline(value) for key, value in node.items()}


def _decimal_multiple_of(validator: Draft202012Validator, divisor: float, instance: object,
                         schema: dict[str, Any]) -> Iterator[ValidationError]:
    """Shares like 33.33 are exact multiples of 0.01 in decimal, though not in binary floats."""
    if validator.is_type(instance, "number") and Decimal(str(instance)) % Decimal(str(divisor)) != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


# validators.extend is untyped in types-jsonschema; it returns a Draft202012Validator subclass
DecimalValidator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"multipleOf": _decimal_multiple_of})


@cache
def _validator(filename: str) -> Draft202012Validator:
    return DecimalValidator(load_schema(filename), format_checker=FormatChecker())


def _title_at(schema: dict[str, Any], path: list[Any]) -> Message:
    """The Chinese title of the field at `path`, for messages people understand; each part
    (a schema title or "第N行") stays translatable on its own."""
    node, titles = schema, []
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
            titles.append(msg("第{n}行", n=part + 1))
        else:
            node = node.get("properties", {}).get(part, {})
            titles.append(Message(node.get("title", str(part))))
    if not titles:
        return Message(schema["title"]) if "title" in schema else msg("表单")
    if len(titles) == 1:
        return titles[0]
    return Message("·".join(f"{{t{i}}}" for i in range(len(titles))), {f"t{i}": t for i, t in enumerate(titles)})


def _node_at(schema: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    node = schema
    for part in path:
        node = node.get("items", {}) if isinstance(part, int) else node.get("properties", {}).get(part, {})
    return node


def _required(schema: dict[str, Any], path: list[Any]) -> Message:
    """A missing yes/no is a radio at the top level and a checkbox inside a group: say which to do."""
    title = _title_at(schema, path)
    if _node_at(schema, path).get("type") == "boolean":
        return msg("请选择{title}", title=title) if len(path) == 1 else msg("请勾选{title}", title=title)
    return msg("{title}为必填项", title=title)


def _wrong_type(schema: dict[str, Any], path: list[Any], title: Message) -> Message:
    """Say what to type rather than that the type is wrong."""
    expected = _node_at(schema, path).get("type")
    if expected == "integer":
        return msg("{title}：请输入整数", title=title)
    if expected == "number":
        return msg("{title}：请输入数字", title=title)
    return msg("{title}的类型不正确", title=title)


def _message(error: ValidationError, schema: dict[str, Any]) -> tuple[str, Message]:
    path = list(error.absolute_path)
    v = str(error.validator)  # the keyword ("required", "minLength"...)
    if v == "required":
        missing = error.message.split("'")[1]
        path = [*path, missing]
        return _dotted(path), _required(schema, path)
    if v == "additionalProperties":
        return _dotted(path), msg("{title}含有不允许的字段", title=_title_at(schema, path))
    title, value = _title_at(schema, path), error.validator_value
    texts = {
        "type": _wrong_type(schema, path, title),
        "enum": msg("{title}的取值不在允许范围内", title=title),
        "const": msg("{title}必须确认", title=title),
        "minimum": msg("{title}不得小于{value}", title=title, value=value),
        "maximum": msg("{title}不得大于{value}", title=title, value=value),
        "minLength": msg("{title}不能为空", title=title) if value == 1 else msg("{title}至少{value}个字", title=title, value=value),
        "maxLength": msg("{title}不得超过{value}个字", title=title, value=value),
        "minItems": msg("{title}至少需要{value}项", title=title, value=value),
        "maxItems": msg("{title}最多{value}项", title=title, value=value),
        "uniqueItems": msg("{title}不得重复", title=title),
        "pattern": msg("{title}格式不正确", title=title),
        "format": msg("{title}格式不正确", title=title),
        "multipleOf": msg("{title}最多保留两位小数", title=title),
    }
    return _dotted(path), texts.get(v) or msg("{title}不符合要求", title=title)


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def validate(filename: str, data: Any) -> None:
    """Raise ValidationFailed listing every failing field; return quietly when valid."""
    schema = load_schema(filename)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "", "message": msg("提交的数据必须是一个对象")}])
    _raise_if_any(schema, list(_validator(filename).iter_errors(data)))


# Limits a saved draft must keep too: an incomplete draft is fine, an over-long one would only
# be refused at submission, long after the person typed it.
DRAFT_LIMITS = ("maxLength", "maxItems")


def check_draft(filename: str, data: dict[str, Any]) -> None:
    """Raise ValidationFailed for the fields of a draft that exceed their limits."""
    errors = [e for e in _validator(filename).iter_errors(data) if e.validator in DRAFT_LIMITS]
    _raise_if_any(load_schema(filename), errors)


def _form_order(schema: dict[str, Any], path: list[Any]) -> list[int]:
    """Where a field comes in the form (the schema's property order, rows by number), so the
    summary of errors reads top to bottom as the form does."""
    node, key = schema, []
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
            key.append(part)
        else:
            names = list(node.get("properties", {}))
            key.append(names.index(part) if part in names else len(names))
            node = node.get("properties", {}).get(part, {})
    return key


def _field_path(error: ValidationError) -> list[Any]:
    """The failing field's path; for a missing field, the field itself rather than its parent."""
    path = list(error.absolute_path)
    if str(error.validator) == "required":
        path.append(error.message.split("'")[1])
    return path


def _raise_if_any(schema: dict[str, Any], errors: list[ValidationError]) -> None:
    """One line per field and message, in the order the form shows the fields."""
    errors = sorted(errors, key=lambda e: _form_order(schema, _field_path(e)))
    if errors:
        seen, listed = set(), []
        for error in errors:
            field, message = _message(error, schema)
            if (field, message) not in seen:
                seen.add((field, message))
                listed.append({"field": field, "message": message})
        raise ValidationFailed(listed)
