"""Template filters and globals: dates in Shanghai time, waiting times, money, translation of
data and engine messages, attachment names, the top bar's counts."""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flask import Flask, current_app, url_for
from flask_babel import get_locale
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup, escape

from workflows import clock
from workflows.catalogue import FLOORS, TEMPLATE_CODES, RoleCode
from workflows.i18n import Message
from workflows.people import access
from workflows.process import queries

from . import database
from .extensions import gettext as _
from .signed_in import me

VIEWER_JS = "vendor/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else clock.as_utc(value).astimezone(clock.SHANGHAI).strftime(fmt)


def money(value: Any) -> str:
    """Yuan as zh-CN writes it: thousands separators and two decimals (1,234,567.50), exact
    from the Decimal strings the engine stores; anything that is no number is shown as it is."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{amount:,.2f}"


def waited(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = max(0, int((clock.now() - clock.as_utc(value)).total_seconds()))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return _("%(d)s天%(h)s小时", d=days, h=hours)
    if hours:
        return _("%(h)s小时%(m)s分钟", h=hours, m=minutes)
    return _("%(m)s分钟", m=minutes)


def nav_context() -> dict[str, Any]:
    """Counts in the top bar; only for signed-in people."""
    if not current_user.is_authenticated:
        return {"nav": None}
    user, s = me(), database.session()
    tasks, unread = queries.nav_counts(s, user)
    return {"nav": {"tasks": tasks, "unread": unread,
                    RoleCode.AUDITOR: bool(user.units_for(RoleCode.AUDITOR)), RoleCode.ADMIN: None in user.units_for(RoleCode.ADMIN),
                    RoleCode.RESEARCHER: bool(user.units_for(RoleCode.RESEARCHER)),
                    "applications": _("我的申请") if user.units_for(RoleCode.RESEARCHER) else _("全部申请")}}


def translate(text: Any) -> Any:
    """Translate text that comes from data (schema titles, step names) or from the engine.
    An engine Message is looked up by its template, then formatted with its parameters, which
    are translated too when they are Messages themselves (a schema title, "第2行", a role).
    gettext is called without keyword arguments, so no %-formatting: a literal % is safe."""
    if isinstance(text, Message):
        translated = _(text.template) if text.template else text.template
        if not text.params:
            return translated
        params = {k: translate(v) if isinstance(v, Message) else v for k, v in text.params.items()}
        try:
            return translated.format(**params)
        except (KeyError, IndexError, ValueError):   # a broken translation: show the original
            return text.template.format(**params)
    return _(text) if isinstance(text, str) and text else text


@pass_context
def document_name(context, document_id: Any) -> str:
    """The stored file name of an attachment id in a form (ids alone mean nothing to people),
    only when the document belongs to the application on the page: a form naming someone
    else's id shows the bare id, never their filename."""
    app = context.get("app") or getattr(context.get("task"), "application", None)
    doc = access.own_document(database.session(), app, document_id) if app is not None else None
    return doc.filename if doc is not None else f"#{document_id}"


@pass_context
def show_value(context, node: dict[str, Any], value: Any) -> Markup:
    """A filed value shown read-only by its form schema: the HTML of the `show_value` macro
    (_macros.html), built in Python. The macro called itself for every field, ~20 µs a call, and a
    filed form has hundreds of fields: this was most of the application page's template time."""
    out: list[str] = []
    _show(node, value, out, lambda doc_id: document_name(context, doc_id))
    return Markup("".join(out))


def _gettext(text: str) -> str:
    return str(Markup(_(text)))  # as the templates' _(): newstyle gettext, not escaped again


def _show(node: dict[str, Any], value: Any, out: list[str], name_of) -> None:
    """Appends what the macro printed, character for character."""
    if value is None or value == "":
        out.append('<span class="muted">—</span>')
        return
    kind = node.get("type")
    if kind == "array":
        _show_array(node, value, out, name_of)
    elif kind == "object":
        out.append('<dl class="kv">\n  ')
        for key, child in node.get("properties", {}).items():
            item = value.get(key)
            if item is not None and item != "":
                out.append(f"\n    <dt>{escape(translate(child.get('title') or key))}</dt><dd>")
                _show(child, item, out, name_of)
                out.append("</dd>\n  ")
        out.append("\n  </dl>")
    elif value is True:
        out.append(_gettext("是"))
    elif value is False:
        out.append(_gettext("否"))
    elif node.get("enum"):  # the label of each matching code (`enum_pairs`' label), without building every pair
        names = node.get("enumNames", [])
        out.extend(str(escape(translate(names[i] if i < len(names) else str(code))))
                   for i, code in enumerate(node["enum"]) if code == value)
    elif node.get("format") == "password":
        out.append("••••")
    else:
        out.append(f'<span class="pre">{escape(value)}</span>')


def _show_array(node: dict[str, Any], value: Any, out: list[str], name_of) -> None:
    """The macro's three array cases: attachments, a table of objects, a list of values."""
    if "document_id" in node["items"].get("properties", {}):
        if value:
            out.append('<ul class="plain">')
            for row in value:
                doc_id = row["document_id"]
                out.append(f'<li><a href="{escape(url_for("applications.document", document_id=doc_id))}">'
                           f"{escape(name_of(doc_id))}</a> {escape(row.get('label', ''))}</li>")
            out.append("</ul>")
        else:
            out.append(f'<span class="muted">{_gettext("无")}</span>')
    elif node["items"].get("type") == "object":
        cols = node["items"].get("properties", {})
        out.append('\n  <div class="table-scroll"><table class="grid compact">\n    <thead><tr>')
        out.extend(f"<th>{escape(translate(col.get('title') or key))}</th>" for key, col in cols.items())
        out.append("</tr></thead>\n    <tbody>")
        for row in value:
            out.append("<tr>")
            for key, col in cols.items():
                out.append("<td>")
                _show(col, row.get(key), out, name_of)
                out.append("</td>")
            out.append("</tr>")
        out.append("</tbody>\n  </table></div>")
    elif value:
        for i, item in enumerate(value):
            _show(node["items"], item, out, name_of)
            if i < len(value) - 1:
                out.append("、")
    else:
        out.append(f'<span class="muted">{_gettext("无")}</span>')


def viewer_installed() -> bool:
    return (Path(current_app.static_folder) / VIEWER_JS).is_file()


def register_template_helpers(app: Flask) -> None:
    app.context_processor(nav_context)
    app.add_template_global(viewer_installed)
    app.add_template_global(document_name)
    app.add_template_global(show_value, "show_value_html")
    app.add_template_global(get_locale)
    app.add_template_global(translate, "tr")
    app.add_template_global(FLOORS, "floors")  # policy floors, written once in workflows/catalogue.py
    for name, codes in TEMPLATE_CODES.items():  # the codes (StepId.REVIEW, RoleCode.TTO...), spelled only there
        app.add_template_global(codes, name)
    app.add_template_filter(local_time, "local")
    app.add_template_filter(waited, "waited")
    app.add_template_filter(money, "money")
