"""Flask's signed-cookie session, with the per-request work it does not need to repeat (issue 10):
the signing serializer is built once per secret key (Flask builds one on every request, to read
the cookie, even when there is none), and a request that neither has nor changed a session (every
API call) skips reading the cookie settings it would only use to set or delete one. Cookies,
their attributes and the `Vary: Cookie` header come out exactly as Flask's own interface sends them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer

if TYPE_CHECKING:
    from flask import Flask, Response


class SessionCookies(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._signing: tuple[tuple[object, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._signing
        if cached is None or cached[0] != key:
            cached = self._signing = (key, super().get_signing_serializer(app))
        return cached[1]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified:  # nothing to set or delete: only the Vary header
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)
