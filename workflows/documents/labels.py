"""Chinese display names and number/date formats for the documents.

Enum names come from the forms' own `enumNames`, so a document never shows a code
(e.g. "patent") and never disagrees with what the user picked in the form.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from workflows.process import forms

from ..catalogue import KIND_LABELS, SIGNERS

SHANGHAI = ZoneInfo("Asia/Shanghai")
_DIGITS = "零一二三四五六七八九"


@cache
def _enum_maps(schema: str) -> dict[str, dict[str, str]]:
    """Property name -> {code: Chinese name}, collected from every enum in one form."""
    found: dict[str, dict[str, str]] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            if "enum" in node and "enumNames" in node:
                found.setdefault(name, dict(zip(node["enum"], node["enumNames"], strict=False)))
            for key, child in node.get("properties", {}).items():
                walk(child, key)
            if "items" in node:
                walk(node["items"], name)

    walk(forms.load_schema(f"{schema}.schema.json"), "")
    return found


def enum_label(schema: str, field: str, code: Any) -> str:  # any JSON value from a form
    """Chinese name of `code` for `field` in form `schema`; unknown codes are shown as-is."""
    return _enum_maps(schema).get(field, {}).get(code, str(code))


def cn_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 21 -> 二十一 (clause numbers 第一条 … 第九十九条)."""
    if n < len(_DIGITS):
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


class ClauseCounter:
    """Hands out 第一条、第二条… in template order, so inserting a clause renumbers the rest."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"第{cn_number(self.n)}条"


def to_local(value: datetime) -> datetime:
    """Aware datetime in Asia/Shanghai; naive values are taken as UTC like the store does."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI)


def parse_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return to_local(value).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def fmt_date(value: date | str) -> str:
    """2026年11月22日 (no zero padding, as in formal Chinese documents)."""
    d = parse_date(value)
    return f"{d.year}年{d.month}月{d.day}日"


def fmt_datetime(value: datetime) -> str:
    local = to_local(value)
    return f"{fmt_date(local.date())} {local:%H:%M:%S}（北京时间）"


def fmt_datetime_plain(value: datetime) -> str:
    """Shanghai time without the zone note, for tables whose header already says 北京时间."""
    local = to_local(value)
    return f"{fmt_date(local.date())} {local:%H:%M:%S}"


def last_local_day(end: datetime) -> date:
    """Last calendar day of a term ending at `end`: a term ending at local midnight
    ends with the day before (the engine's publicity windows end at 00:00 Shanghai)."""
    local = to_local(end)
    return (local - timedelta(microseconds=1)).date()


def _decimal(value: Decimal | float | str) -> Decimal:
    return Decimal(str(value))


def in_groups(value: str, size: int = 8) -> list[str]:
    """A hash or signature as groups of eight, each printed unbreakable: lines break only between
    groups, so a value copied from paper is exact once its spaces are removed (base64's "/" is a
    line-break opportunity and once broke a printed signature inside)."""
    return [value[i:i + size] for i in range(0, len(value), size)]


def fmt_percent(value: Decimal | float | str) -> str:
    """80 -> 80%, 33.3 -> 33.3%, 12.345 -> 12.35% (forms allow two decimals)."""
    q = _decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP)
    text = format(q, "f").rstrip("0").rstrip(".")
    return f"{text}%"


def fmt_money(value: Decimal | float | str) -> str:
    """1234567.5 -> 1,234,567.50元."""
    q = _decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{q:,.2f}元"


_UPPER = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ["", "拾", "佰", "仟"]
_BIG_UNITS = ["", "万", "亿", "万"]


def _upper_integer(n: int) -> str:
    digits = str(n)
    out: list[str] = []
    zero_pending = False
    for i, ch in enumerate(digits):
        pos = len(digits) - 1 - i
        if ch == "0":
            zero_pending = True
        else:
            if zero_pending and out:
                out.append("零")
            zero_pending = False
            out.append(_UPPER[int(ch)] + _SMALL_UNITS[pos % 4])
        if pos % 4 == 0 and pos > 0 and int(digits[max(0, i - 3): i + 1]):
            out.append(_BIG_UNITS[pos // 4])
    return "".join(out)


def fmt_money_upper(value: Decimal | float | str) -> str:
    """Amount in Chinese capitals (人民币大写), as contracts state prices twice."""
    q = _decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP)
    yuan, cents = divmod(int(q * 100), 100)
    jiao, fen = divmod(cents, 10)
    text = _upper_integer(yuan) + "元" if yuan else ""
    if not cents:
        return (text or "零元") + "整"
    if jiao:
        text += _UPPER[jiao] + "角"
    elif text:
        text += "零"
    if fen:
        text += _UPPER[fen] + "分"
    return text


KIND_NAMES = KIND_LABELS  # printed as they are: documents are Chinese, never translated
ROLE_NAMES = {party: name for party, (_step, _label, _title, name) in SIGNERS.items()}


def iso(value: object) -> str:
    """ISO text for PDF metadata."""
    return to_local(value).isoformat() if isinstance(value, datetime) else str(value)
