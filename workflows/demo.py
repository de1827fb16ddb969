"""Demo data: two units and the people who run a grant. Idempotent: safe to run twice."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.people.access import SystemActor

from .catalogue import RoleCode
from .models import Unit, User
from .people import accounts

DEMO_PASSWORD = "demo-pass-2026"
UNITS = [
    ("SZDU", "深圳示范大学", "深圳示范大学科研院成果转化办公室，电话 0755-00000001，邮箱 tto@szdu.example.edu.cn"),
    ("SZDI", "深圳示范研究院", "深圳示范研究院成果转化部，电话 0755-00000002，邮箱 tto@szdi.example.org.cn"),
]
USERS: list[tuple[str, str, list[tuple[str, str | None]]]] = [  # username, name, (role, unit code)
    ("researcher1", "李明", [(RoleCode.RESEARCHER, "SZDU")]),
    ("researcher2", "王芳", [(RoleCode.RESEARCHER, "SZDU")]),
    ("researcher3", "张伟", [(RoleCode.RESEARCHER, "SZDU")]),
    ("researcher9", "陈静", [(RoleCode.RESEARCHER, "SZDU")]),
    ("tto1", "刘洋", [(RoleCode.TTO, "SZDU")]),
    ("decider1", "黄建国", [(RoleCode.DECIDER, "SZDU")]),
    ("signer1", "周红", [(RoleCode.SIGNER, "SZDU")]),
    ("auditor1", "吴敏", [(RoleCode.AUDITOR, "SZDU")]),
    ("admin", "系统管理员", [(RoleCode.ADMIN, None)]),
    ("tto2", "孙丽", [(RoleCode.TTO, "SZDI")]),
    ("auditor2", "郑强", [(RoleCode.AUDITOR, "SZDI")]),
]


def seed(session: Session) -> list[str]:
    """Create what is missing; returns the usernames created."""
    for code, name, contact in UNITS:
        if session.execute(select(Unit).where(Unit.code == code)).scalar_one_or_none() is None:
            session.add(Unit(code=code, name=name, contact=contact))
    session.flush()
    created = []
    for username, name, roles in USERS:
        if session.execute(select(User).where(User.username == username)).scalar_one_or_none() is None:
            accounts.create_user(session, username, name, DEMO_PASSWORD, email=f"{username}@example.org",
                                 roles=list(roles), actor=SystemActor("demo"))
            created.append(username)
    return created
