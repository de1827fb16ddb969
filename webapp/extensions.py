"""Flask extensions, created unbound here and bound to the app in `register`."""
from __future__ import annotations

import flask_babel
from flask import Flask, g, has_app_context, request, session
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


def translations():
    """This request's catalogue, looked up once: flask_babel looks it up again for every string
    (~15 µs each through its context proxies; a list page translates over a thousand)."""
    if not has_app_context():
        return flask_babel.get_translations()  # NullTranslations outside a request, as flask_babel does
    found = g.get("_grants_translations")
    if found is None:
        found = g._grants_translations = flask_babel.get_translations()
    return found


def gettext(string: str, **variables) -> str:
    """flask_babel.gettext with the catalogue looked up once per request."""
    text = translations().ugettext(string)
    return text % variables if variables else text


def register(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(  # the templates' _() through the same per-request catalogue
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n))
