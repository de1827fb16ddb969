"""Who is signed in: flask-login's user, the current user as the engine's model, the role
guard, where a signed-in person lands, and the same-site check for ?next=."""
from __future__ import annotations

from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, url_for
from flask_login import UserMixin, current_user
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from workflows.catalogue import RoleCode
from workflows.models import User
from workflows.people import signin

from . import database
from .extensions import login_manager

MAX_ID_DIGITS = 10   # a session id longer than this is forged: never an int() of a huge string


class SignedIn(UserMixin):
    """flask-login's view of a workflows User; `.user` is the model the engine wants."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        # The nonce ends the session at sign-out, the hash tail at a password change.
        return signin.session_key(self.user)

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


# Every request's first read: the user with their roles in one statement (a join, not the
# relationship's second SELECT), built once with the id bound.
_USER_WITH_ROLES = select(User).options(joinedload(User.roles)).where(User.id == bindparam("user_id"))


@login_manager.user_loader
def load_user(user_id: str) -> SignedIn | None:
    ident = user_id.partition(":")[0]
    user = (database.session().execute(_USER_WITH_ROLES, {"user_id": int(ident)}).unique().scalar_one_or_none()
            if ident.isdigit() and len(ident) < MAX_ID_DIGITS else None)
    if user is None or not signin.matches(user, user_id):
        return None
    return SignedIn(user)


def me() -> User:
    """The signed-in user as the engine's model (call only behind login_required)."""
    return current_user.user


def role_required(role: str):
    """Refuse (403) anyone without `role` in at least one unit."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not me().units_for(role):
                abort(403)
            return view(*args, **kwargs)
        return wrapper
    return decorator


def safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("ui.home")


# Roles that receive tasks; someone holding none of them has an always-empty 我的待办.
TASK_ROLES = (RoleCode.RESEARCHER, RoleCode.TTO, RoleCode.DECIDER, RoleCode.SIGNER, RoleCode.ADMIN)


def landing() -> str:
    """Where a signed-in person starts: auditors on 审计, city auditors on 成果库, others on 我的待办."""
    roles = {g.role for g in me().roles}
    if roles & set(TASK_ROLES) or not roles:
        return url_for("tasks.index")
    return url_for("auditor.index") if RoleCode.AUDITOR in roles else url_for("registry.index")

