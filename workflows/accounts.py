"""Users and passwords: hashing, sign-in with lockout, roles per unit."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import clock
from .errors import Forbidden, GrantError, ValidationFailed
from .models import ROLES, RoleGrant, Unit, User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(user: User, password: str) -> bool:
    return bool(password) and check_password_hash(user.password_hash, password)


def authenticate(session: Session, username: str, password: str) -> User:
    """Sign-in: the same message for unknown users and bad passwords; lockout after failures."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    refused = GrantError("用户名或密码错误")
    if user is None or not user.active:
        raise refused
    now = clock.now()
    if user.locked_until and user.locked_until > now:
        raise Forbidden("登录失败次数过多，账户已暂时锁定，请15分钟后再试")
    if not check_password(user, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        raise refused
    user.failed_logins, user.locked_until = 0, None
    return user


def change_password(user: User, old: str, new: str) -> None:
    if not check_password(user, old):
        raise ValidationFailed([{"field": "old_password", "message": "原密码不正确"}])
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed([{"field": "new_password", "message": f"新密码至少{MIN_PASSWORD_LENGTH}位"}])
    user.password_hash = hash_password(new)


def create_user(session: Session, username: str, name: str, password: str, email: str = "",
                roles: list[tuple[str, str | None]] = ()) -> User:
    """Create a user with (role, unit code or None) grants; refuses duplicates and unknown roles."""
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise ValidationFailed([{"field": "username", "message": f"用户名“{username}”已存在"}])
    user = User(username=username, name=name, email=email, password_hash=hash_password(password))
    session.add(user)
    for role, unit_code in roles:
        grant_role(session, user, role, unit_code)
    session.flush()
    return user


def grant_role(session: Session, user: User, role: str, unit_code: str | None) -> RoleGrant:
    if role not in ROLES:
        raise ValidationFailed([{"field": "role", "message": f"未知角色“{role}”"}])
    unit = None
    if unit_code is not None:
        unit = session.execute(select(Unit).where(Unit.code == unit_code)).scalar_one_or_none()
        if unit is None:
            raise ValidationFailed([{"field": "unit", "message": f"未知单位“{unit_code}”"}])
    grant = RoleGrant(unit=unit, role=role)
    user.roles.append(grant)
    return grant
