"""Bearer tokens for the REST API: signed, short-lived, revoked by a password change.

A token is the user id and a digest of the password hash, signed with the app's SECRET_KEY
(itsdangerous). Nothing is stored server-side: changing the password changes the digest,
so every token issued before no longer verifies.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from workflows.errors import Forbidden, GrantError
from workflows.models import User
from workflows.people import access

from ..database import session
from ..extensions import gettext as _

SALT = "api-token"
MAX_AGE_SECONDS = 12 * 3600
WRITER_ROLES = access.WRITER_ROLES


class Unauthorized(GrantError):
    """No token, a forged or expired one, or bad credentials: answered 401."""

    status = 401


def _serializer() -> URLSafeTimedSerializer:
    """One per app and secret key (it holds no state between calls; every API call verifies a
    token): built again only if the key changes."""
    key = current_app.config["SECRET_KEY"]
    cached = current_app.extensions.get("grants_token_serializer")
    if cached is None or cached[0] != key:
        cached = current_app.extensions["grants_token_serializer"] = (key, URLSafeTimedSerializer(key, salt=SALT))
    return cached[1]


def _password_digest(user: User) -> str:
    """A fragment of a digest of the password hash: binds the token to the current password
    without putting any part of the hash itself into the (readable) token."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def issue_token(user: User) -> str:
    return _serializer().dumps({"uid": user.id, "pw": _password_digest(user)})


# Built once (every API call runs it); a new session's identity map is empty, so `session.get`
# would always have emitted this same statement, after building it anew.
_USER_WITH_ROLES = select(User).where(User.id == bindparam("uid")).options(joinedload(User.roles))


def user_from_token(token: str) -> User:
    try:
        claims = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
    except BadSignature as exc:  # SignatureExpired is a BadSignature too
        raise Unauthorized(_("访问令牌无效或已过期，请重新获取")) from exc
    # one statement: the person with their roles (every API call needs both)
    user = session().execute(_USER_WITH_ROLES, {"uid": claims.get("uid")}).unique().scalar_one_or_none() \
        if isinstance(claims, dict) else None
    if user is None or not user.active or claims.get("pw") != _password_digest(user):
        raise Unauthorized(_("访问令牌无效或已过期，请重新获取"))
    return user


def _bearer_token() -> str:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(_("缺少访问令牌：请在 Authorization 头中提供 Bearer 令牌"))
    return token.strip()


def check_may_write(user: User) -> None:
    """Auditors read and never write: someone holding only the auditor role changes nothing."""
    if not any(grant.role in WRITER_ROLES for grant in user.roles):
        raise Forbidden(_("审计人员只能查看，不能执行任何操作"))


def bearer(write: bool = False) -> Callable:
    """Decorator: the view runs with `g.api_user` set from a valid bearer token."""
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            g.api_user = user_from_token(_bearer_token())
            if write:
                check_may_write(g.api_user)
            return view(*args, **kwargs)
        return wrapper
    return decorate


def api_user() -> User:
    return g.api_user
