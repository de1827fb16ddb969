"""Single sign-on through the unit's central identity service (统一身份认证) with OpenID Connect.

Configured by GRANTS_OIDC_ISSUER, GRANTS_OIDC_CLIENT_ID and GRANTS_OIDC_CLIENT_SECRET; the claim
that names the account (GRANTS_OIDC_CLAIM, default preferred_username) is matched against the
users' username or e-mail (GRANTS_OIDC_MATCH). Without an issuer the routes are not registered."""
from __future__ import annotations

import os

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, flash, redirect, render_template, url_for
from flask_login import login_user

from workflows.errors import GrantError
from workflows.people import sso

from .. import database
from ..errors import message_of
from ..extensions import gettext as _
from ..signed_in import SignedIn

bp = Blueprint("sso", __name__)


def _client():
    return current_app.extensions["grants_oauth"].create_client("campus")


@bp.get("/login/sso")
def start():
    return _client().authorize_redirect(url_for("sso.callback", _external=True))


@bp.get("/login/sso/callback")
def callback():
    client = _client()
    try:
        token = client.authorize_access_token()
        claims = {**client.userinfo(token=token), **token.get("userinfo", {})}
    except AuthlibBaseError as exc:
        current_app.logger.warning("single sign-on refused by the provider: %s", exc.error)
        return _refused(_("统一身份认证未完成，请重试")), 401
    try:
        user = sso.account_for_claims(database.session(), claims, current_app.config["OIDC_CLAIM"],
                                      current_app.config["OIDC_MATCH"])
    except GrantError as exc:
        return _refused(message_of(exc)), exc.status
    login_user(SignedIn(user))
    return redirect(url_for("tasks.index"))


def _refused(message: str) -> str:
    flash(message, "error")
    return render_template("auth/login.html", username="")


def register(app: Flask) -> None:
    issuer = app.config.setdefault("OIDC_ISSUER", os.environ.get("GRANTS_OIDC_ISSUER", ""))
    app.config.setdefault("OIDC_CLAIM", os.environ.get("GRANTS_OIDC_CLAIM", "preferred_username"))
    app.config.setdefault("OIDC_MATCH", os.environ.get("GRANTS_OIDC_MATCH", "username"))
    app.config.setdefault("OIDC_LABEL", os.environ.get("GRANTS_OIDC_LABEL", ""))
    if not issuer:
        return
    if app.config["OIDC_MATCH"] not in sso.MATCH_FIELDS:
        raise RuntimeError(f"GRANTS_OIDC_MATCH must be one of {sso.MATCH_FIELDS}")
    app.config.setdefault("CAMPUS_CLIENT_ID", os.environ.get("GRANTS_OIDC_CLIENT_ID", ""))
    app.config.setdefault("CAMPUS_CLIENT_SECRET", os.environ.get("GRANTS_OIDC_CLIENT_SECRET", ""))
    oauth = OAuth(app)
    app.extensions["grants_oauth"] = oauth
    oauth.register("campus", server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
                   client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"})
    app.register_blueprint(bp)
