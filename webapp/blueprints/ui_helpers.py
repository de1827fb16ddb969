"""Shared pieces of the HTML pages: who is signed in, error pages, the locale switch,
date filters, and the generic form that turns a task's JSON Schema into inputs and back."""
from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_login import UserMixin, current_user
from flask_wtf.csrf import CSRFError
from jinja2 import pass_context
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from workflows import access, clock, queries, signin
from workflows.catalogue import FLOORS
from workflows.errors import Conflict, GrantError, ValidationFailed
from workflows.i18n import Message, msg
from workflows.models import User

from .. import database, security
from ..extensions import LOCALES, login_manager
from ..extensions import gettext as _

bp = Blueprint("ui", __name__)
VIEWER_JS = "vendor/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js"
MAX_ID_DIGITS = 10   # a session id longer than this is forged: never an int() of a huge string
TEXTAREA_FROM = 200  # a string field allowing more characters than this gets a textarea
EXAMPLE_MAX = 60     # longer example values are not shown as a hint


# --- who is signed in -------------------------------------------------------------------

class SignedIn(UserMixin):
    """flask-login's view of a workflows User; `.user` is the model the engine wants."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        # The nonce ends the session at sign-out, the hash tail at a password change.
        return signin.session_key(self.user)

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


@login_manager.user_loader
def load_user(user_id: str) -> SignedIn | None:
    ident = user_id.partition(":")[0]
    user = database.session().get(User, int(ident)) if ident.isdigit() and len(ident) < MAX_ID_DIGITS else None
    if user is None or not signin.matches(user, user_id):
        return None
    return SignedIn(user)


def me() -> User:
    """The signed-in user as the engine's model (call only behind login_required)."""
    return current_user.user


def role_required(role: str):
    """Refuse (403) anyone without `role` in at least one unit."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not me().units_for(role):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


# --- errors -----------------------------------------------------------------------------

def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def handle_busy_database(exc: OperationalError):
    """SQLite refuses a second writer that read an older snapshot: that is a lost race (409),
    told as such, not a crash. Any other operational error means the database cannot be
    reached or used right now: 503 with Retry-After, rendered without touching it again."""
    if "locked" not in str(exc.orig).lower() and "busy" not in str(exc.orig).lower():
        _rollback_quietly()
        current_app.logger.error("database unavailable: %s", type(exc.orig).__name__)  # no values: no personal data
        return security.database_unavailable()
    return handle_grant_error(Conflict(msg("系统正忙：该申请刚被他人修改，请刷新后重试")))


def handle_bad_data(exc: DBAPIError):
    """The database refused a value (out of range, NUL): bad input, 400, never a 500."""
    _rollback_quietly()
    return handle_grant_error(GrantError(msg("输入的数据无效（数值超出范围或含有非法字符）")))


def _rollback_quietly() -> None:
    s = g.get("db_session")
    if s is not None:
        with suppress(DBAPIError):
            s.rollback()


def handle_grant_error(exc: GrantError):
    """An engine refusal: JSON for scripts, else an error page with the Chinese message."""
    database.discard_changes()
    if wants_json():
        body = {"error": message_of(exc), "errors": translated_errors(exc)}
        return jsonify(body), exc.status
    return render_template("error.html", status=exc.status, message=message_of(exc)), exc.status


def handle_http_error(exc: HTTPException):
    database.discard_changes()
    if wants_json():
        return jsonify({"error": exc.description}), exc.code
    messages = {400: _("请求无效"), 403: _("您没有权限访问此页面"), 404: _("页面不存在或您无权查看"),
                405: _("不支持该请求方式"), 413: _("上传的文件过大"), 500: _("服务器内部错误")}
    return render_template("error.html", status=exc.code,
                           message=messages.get(exc.code, exc.description)), exc.code


def handle_csrf_error(exc: CSRFError):
    if wants_json():
        return jsonify({"error": "CSRF"}), 400
    return render_template("error.html", status=400,
                           message=_("表单已过期或缺少安全令牌，请返回刷新页面后重试")), 400


def message_of(exc: GrantError) -> str:
    """The refusal's message in the page's language; a ValidationFailed joins its field messages."""
    errors = getattr(exc, "errors", None)
    if isinstance(exc, ValidationFailed) and errors:
        separator = "；" if get_locale() is None or get_locale().language == "zh" else "; "
        return separator.join(str(translate(error.get("message", ""))) for error in errors)
    return translate(exc.message)


def translated_errors(exc: GrantError) -> list[dict[str, Any]]:
    """A ValidationFailed's `errors` with each message in the page's language."""
    return [{**error, "message": translate(error.get("message"))} for error in getattr(exc, "errors", [])]


def errors_by_field(exc: ValidationFailed) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in exc.errors:
        found.setdefault(error.get("field", ""), []).append(translate(error["message"]))
    return found


def flash_error(exc: GrantError) -> None:
    flash(message_of(exc), "error")


# --- locale, dates, navigation ------------------------------------------------------------

@bp.get("/locale/<code>")
def set_locale(code: str):
    """The zh/EN switch; remembered in the session."""
    if code in LOCALES:
        session["locale"] = code
    return redirect(safe_next(request.args.get("next")))


def safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("ui.home")


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(landing())
    return redirect(url_for("auth.login"))


# Roles that receive tasks; someone holding none of them has an always-empty 我的待办.
TASK_ROLES = ("researcher", "tto", "decider", "signer", "admin")


def landing() -> str:
    """Where a signed-in person starts: auditors on 审计, city auditors on 成果库, others on 我的待办."""
    roles = {g.role for g in me().roles}
    if roles & set(TASK_ROLES) or not roles:
        return url_for("tasks.index")
    return url_for("auditor.index") if "auditor" in roles else url_for("registry.index")


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
    unread = len(s.execute(queries.unread_notifications(user).limit(100)).scalars().all())
    return {"nav": {"tasks": queries.task_count(s, user), "unread": unread,
                    "auditor": bool(user.units_for("auditor")), "admin": None in user.units_for("admin"),
                    "researcher": bool(user.units_for("researcher")),
                    "applications": _("我的申请") if user.units_for("researcher") else _("全部申请")}}


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


def viewer_installed() -> bool:
    return (Path(current_app.static_folder) / VIEWER_JS).is_file()


# --- the generic schema form ------------------------------------------------------------

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


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(GrantError, handle_grant_error)
    app.register_error_handler(OperationalError, handle_busy_database)
    app.register_error_handler(InterfaceError, handle_busy_database)
    app.register_error_handler(DataError, handle_bad_data)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.context_processor(nav_context)
    app.add_template_global(viewer_installed)
    app.add_template_global(document_name)
    app.add_template_global(get_locale)
    app.add_template_global(translate, "tr")
    app.add_template_global(widget)
    app.add_template_global(enum_pairs)
    app.add_template_global(example_at)
    app.add_template_global(FLOORS, "floors")  # policy floors, written once in workflows/catalogue.py
    app.add_template_filter(local_time, "local")
    app.add_template_filter(waited, "waited")
    app.add_template_filter(money, "money")
