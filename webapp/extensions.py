"""Flask extensions, created unbound here and bound to the app in `register`."""
from __future__ import annotations

from flask import Flask, request, session
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
LOCALES = ("zh_CN", "en")


def select_locale() -> str:
    """Chinese unless the person switched to English (kept in the session); API clients, who
    have no session, choose with Accept-Language."""
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    if request.path.startswith("/api/"):
        return request.accept_languages.best_match(LOCALES, default="zh_CN").replace("-", "_")
    return "zh_CN"


def register(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
