"""Sign-in, sign-out and password change."""
from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from workflows.errors import GrantError, ValidationFailed
from workflows.people import accounts, signin

from .. import database
from ..errors import errors_by_field, message_of
from ..extensions import gettext as _
from ..signed_in import SignedIn, landing, me, safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(landing())
    if request.method == "GET":
        return render_template("auth/login.html", username="")
    username = request.form.get("username", "").strip()
    try:
        user = accounts.authenticate(database.session(), username, request.form.get("password", ""),
                                     client=request.remote_addr or "")
    except GrantError as exc:
        # Documented exception to one-commit-per-request: the failed-login counter must
        # survive the refusal, or the lockout could never trigger.
        database.session().commit()
        flash(message_of(exc), "error")
        return render_template("auth/login.html", username=username), 403 if exc.status == HTTPStatus.FORBIDDEN else 401
    login_user(SignedIn(user))
    return redirect(safe_next(request.args.get("next")))


@bp.post("/logout")
@login_required
def logout():
    signin.end_sessions(me())  # a copy of the cookie taken before now is worthless after
    logout_user()
    flash(_("您已安全退出"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "GET":
        return render_template("auth/password.html", errors={})
    new = request.form.get("new_password", "")
    try:
        if new != request.form.get("confirm_password", ""):
            raise ValidationFailed([{"field": "confirm_password", "message": _("两次输入的新密码不一致")}])
        accounts.change_password(me(), request.form.get("old_password", ""), new)
    except ValidationFailed as exc:
        return render_template("auth/password.html", errors=errors_by_field(exc)), 422
    signin.end_sessions(me())
    login_user(SignedIn(me()))  # every other session ends; this one continues with the new key
    flash(_("密码已修改"), "success")
    return redirect(url_for("tasks.index"))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
