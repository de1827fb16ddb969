"""Task forms: JSON Schemas in forms/, validated with jsonschema, errors named in Chinese."""
from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from .errors import ValidationFailed

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"


@cache
def load_schema(filename: str) -> dict[str, Any]:
    path = (FORMS_DIR / filename).resolve()
    if path.parent != FORMS_DIR or not path.is_file():
        raise FileNotFoundError(filename)
    return json.loads(path.read_text(encoding="utf-8"))


def _decimal_multiple_of(validator, divisor, instance, schema):
    """Shares like 33.33 are exact multiples of 0.01 in decimal, though not in binary floats."""
    if validator.is_type(instance, "number") and Decimal(str(instance)) % Decimal(str(divisor)) != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


DecimalValidator = validators.extend(Draft202012Validator, {"multipleOf": _decimal_multiple_of})


@cache
def _validator(filename: str) -> Draft202012Validator:
    return DecimalValidator(load_schema(filename), format_checker=FormatChecker())


def _title_at(schema: dict[str, Any], path: list[Any]) -> str:
    """The Chinese title of the field at `path`, for messages people understand."""
    node, titles = schema, []
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
            titles.append(f"第{part + 1}行")
        else:
            node = node.get("properties", {}).get(part, {})
            titles.append(node.get("title", str(part)))
    return "·".join(titles) or schema.get("title", "表单")


def _message(error, schema: dict[str, Any]) -> tuple[str, str]:
    path = list(error.absolute_path)
    v = error.validator
    if v == "required":
        missing = error.message.split("'")[1]
        path = path + [missing]
        return _dotted(path), f"{_title_at(schema, path)}为必填项"
    if v == "additionalProperties":
        return _dotted(path), f"{_title_at(schema, path)}含有不允许的字段"
    title = _title_at(schema, path)
    texts = {
        "type": f"{title}的类型不正确",
        "enum": f"{title}的取值不在允许范围内",
        "const": f"{title}必须确认",
        "minimum": f"{title}不得小于{error.validator_value}",
        "maximum": f"{title}不得大于{error.validator_value}",
        "minLength": f"{title}不能为空" if error.validator_value == 1 else f"{title}至少{error.validator_value}个字",
        "maxLength": f"{title}不得超过{error.validator_value}个字",
        "minItems": f"{title}至少需要{error.validator_value}项",
        "maxItems": f"{title}最多{error.validator_value}项",
        "uniqueItems": f"{title}不得重复",
        "pattern": f"{title}格式不正确",
        "format": f"{title}格式不正确",
        "multipleOf": f"{title}最多保留两位小数",
    }
    return _dotted(path), texts.get(v, f"{title}不符合要求")


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)


def validate(filename: str, data: Any) -> None:
    """Raise ValidationFailed listing every failing field; return quietly when valid."""
    schema = load_schema(filename)
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": "", "message": "提交的数据必须是一个对象"}])
    errors = sorted(_validator(filename).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        seen, listed = set(), []
        for error in errors:
            field, message = _message(error, schema)
            if (field, message) not in seen:
                seen.add((field, message))
                listed.append({"field": field, "message": message})
        raise ValidationFailed(listed)
