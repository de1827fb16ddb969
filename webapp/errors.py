"""Error pages and messages: engine refusals, HTTP errors, CSRF and database failures become
JSON for scripts or the error page for people, with the message in the page's language."""
from __future__ import annotations

from contextlib import suppress
from typing import Any

from flask import Flask, current_app, flash, g, jsonify, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from workflows.errors import Conflict, GrantError, ValidationFailed
from workflows.i18n import msg

from . import database, security
from .extensions import gettext as _
from .filters import translate


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


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(GrantError, handle_grant_error)
    app.register_error_handler(OperationalError, handle_busy_database)
    app.register_error_handler(InterfaceError, handle_busy_database)
    app.register_error_handler(DataError, handle_bad_data)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
