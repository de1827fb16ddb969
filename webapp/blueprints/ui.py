"""The pages that belong to no area (the locale switch, the home redirect); register() wires in
the shared rooms: error handlers, template filters and globals, the generic form's helpers."""
from __future__ import annotations

from flask import Blueprint, Flask, redirect, request, session, url_for
from flask_login import current_user

from ..errors import register_error_handlers
from ..extensions import LOCALES
from ..filters import register_template_helpers
from ..form_widgets import register_form_helpers
from ..signed_in import landing, safe_next

bp = Blueprint("ui", __name__)


@bp.get("/locale/<code>")
def set_locale(code: str):
    """The zh/EN switch; remembered in the session."""
    if code in LOCALES:
        session["locale"] = code
    return redirect(safe_next(request.args.get("next")))


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(landing())
    return redirect(url_for("auth.login"))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    register_error_handlers(app)
    register_template_helpers(app)
    register_form_helpers(app)
