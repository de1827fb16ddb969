"""Flask extensions, created unbound here and bound to the app in `register`."""
from __future__ import annotations

from flask import Flask, session
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
LOCALES = ("zh_CN", "en")


def select_locale() -> str:
    """Chinese unless the person switched to English (kept in the session)."""
    chosen = session.get("locale")
    return chosen if chosen in LOCALES else "zh_CN"


def register(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
