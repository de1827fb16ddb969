"""The web boundary's defences (issue 8): security headers on every response, secure cookies
behind HTTPS, bad input refused before it reaches the database (NUL bytes, ids beyond the
integer range, JSON nested too deep), and an unreachable database answered 503."""
from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from markupsafe import escape
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from workflows.errors import GrantError

from .extensions import gettext as _

# Scripts and styles only from our own origin: no inline script, no eval, no inline style;
# the PDF preview is an <object> of our own document; nobody may frame us.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
       "connect-src 'self'; object-src 'self'; frame-src 'self'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"}
MAX_DB_INT = 2**31 - 1          # PostgreSQL INTEGER; SQLite would take more, the other never
MAX_JSON_DEPTH = 64
RETRY_AFTER_SECONDS = 30


class BoundedInt(IntegerConverter):
    """`<int:…>` that only matches ids the database can hold: a larger one is simply not found."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_DB_INT)
        super().__init__(map, *args, **kwargs)


def _depth_ok(value: Any) -> bool:
    """Iterative, so a deep document cannot exhaust the stack here either."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class GuardedJSON(DefaultJSONProvider):
    """Request bodies: too deep or containing NUL → 400 with a clear message, never a
    RecursionError (500) nor a database error."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise BadRequest(_("JSON 嵌套层数过深（最多%(n)s层）", n=MAX_JSON_DEPTH)) from None
        if not _depth_ok(value):
            raise BadRequest(_("JSON 嵌套层数过深（最多%(n)s层）", n=MAX_JSON_DEPTH))
        if _has_nul(value):
            raise BadRequest(_("输入中含有空字符（NUL），请删除后重试"))
        return value


def _refuse_nul_bytes() -> None:
    """NUL never belongs in text people type; PostgreSQL cannot even store it."""
    fields = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        fields += [*request.form.keys(), *request.form.values(),
                   *(f.filename or "" for f in request.files.values())]
    if any(isinstance(field, str) and "\x00" in field for field in fields):
        raise GrantError(_("输入中含有空字符（NUL），请删除后重试"))  # 400, page or JSON


_HEADER_ITEMS = tuple(HEADERS.items())
_HEADER_NAMES = frozenset(name.lower() for name in HEADERS)


def _security_headers(response: Response) -> Response:
    """Each header unless the view set its own (as `setdefault` per header, which looks every
    name up through a caught KeyError: one pass over the response's few headers instead)."""
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}
    if present.isdisjoint(_HEADER_NAMES):
        headers.extend(_HEADER_ITEMS)
    else:
        headers.extend([(name, value) for name, value in _HEADER_ITEMS if name.lower() not in present])
    return response


def database_unavailable() -> Response:
    """503 without touching the database again: no template context, no session user."""
    message = _("数据库暂时无法访问，请稍后重试")
    wants_json = request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
    if wants_json:
        response = jsonify({"error": message})
    else:
        response = Response(
            f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>503</title></head>'
            f'<body><h1>HTTP 503</h1><p data-testid="error-message">{escape(message)}</p></body></html>',
            mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def secure_cookies(config: dict[str, Any]) -> bool:
    flag = str(config.get("SECURE_COOKIES") or "").lower() in ("1", "true", "yes", "on")
    return flag or str(config.get("BASE_URL", "")).startswith("https://")


def register(app: Flask) -> None:
    """Call before the blueprints register (the int converter applies when rules are added)."""
    app.url_map.converters["int"] = BoundedInt
    app.json_provider_class = GuardedJSON
    app.json = GuardedJSON(app)
    secure = secure_cookies(app.config)
    app.config.update(SESSION_COOKIE_SECURE=secure, REMEMBER_COOKIE_SECURE=secure)
    app.before_request(_refuse_nul_bytes)
    app.after_request(_security_headers)
