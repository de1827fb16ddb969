"""Single sign-on (统一身份认证): which account an identity provider's claims belong to, and
whether a person may still sign in with a password. The protocol itself lives in the web layer;
the rules live here so every front end applies the same ones."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflows.errors import Forbidden, GrantError
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import Unit, User

from .access import require_admin

MATCH_FIELDS = ("username", "email")


def account_for_claims(session: Session, claims: dict[str, Any], claim: str, match: str) -> User:
    """The active user whose `match` field equals the provider's `claim`; refuses anyone else.

    Accounts are never created from a sign-in: an administrator decides who may use the system."""
    if match not in MATCH_FIELDS:
        raise ValueError(f"GRANTS_OIDC_MATCH must be one of {MATCH_FIELDS}, not {match!r}")
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise GrantError(msg("统一身份认证未提供“{claim}”信息，无法确定本系统账户", claim=claim))
    column = User.username if match == "username" else func.lower(User.email)
    wanted = value.strip() if match == "username" else value.strip().lower()
    user = session.execute(select(User).where(column == wanted)).scalars().first()
    if user is None or not user.active:
        raise Forbidden(msg("统一身份认证账户“{value}”未开通本系统权限，请联系管理员", value=value.strip()))
    return user


def check_password_sign_in(session: Session, user: User) -> None:
    """A unit that signs its staff in centrally may turn password sign-in off for them."""
    unit_ids = {g.unit_id for g in user.roles if g.unit_id is not None}
    if not unit_ids:
        return
    central = session.execute(select(Unit.name).where(Unit.id.in_(unit_ids), Unit.password_sign_in.is_(False))
                              ).scalars().first()
    if central is not None:
        raise Forbidden(msg("{unit}已启用统一身份认证，请使用统一身份认证登录", unit=central))


def set_password_sign_in(session: Session, actor: User, unit: Unit, allowed: bool) -> None:
    """Administrators only: turn password sign-in on or off for a unit's staff."""
    require_admin(actor, msg("只有管理员可以更改单位的登录方式"))
    unit.password_sign_in = allowed
    audit.record(session, actor=actor.username, action="set_password_sign_in", unit_id=unit.id,
                 detail={"allowed": allowed})



