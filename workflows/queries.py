"""Read-side helpers for task lists, application pages and history; they return Select objects
or plain data and never change anything."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from . import forms, runtime
from .models import (
    Application,
    AuditEvent,
    Document,
    HumanTask,
    Notification,
    Objection,
    PublicityNotice,
    RoleGrant,
    Signature,
    TaskDraft,
    User,
)


def tasks_for(user: User, kind: str | None = None, step: str | None = None,
              since: datetime | None = None) -> Select:
    """Ready tasks assigned to the user, plus their roles' unclaimed queues; oldest first."""
    queue_filters = [HumanTask.role == g.role if g.unit_id is None
                     else and_(HumanTask.role == g.role, HumanTask.unit_id == g.unit_id)
                     for g in user.roles if g.role in ("tto", "decider", "signer")]
    mine = HumanTask.assignee_id == user.id
    condition = or_(mine, *[f & HumanTask.assignee_id.is_(None) for f in queue_filters]) if queue_filters else mine
    query = select(HumanTask).join(Application).where(HumanTask.state == "ready", condition)
    if kind:
        query = query.where(Application.kind == kind)
    if step:
        query = query.where(HumanTask.bpmn_id == step)
    if since:
        query = query.where(HumanTask.created_at >= since)
    return query.order_by(HumanTask.created_at, HumanTask.id)


def task_count(session: Session, user: User) -> int:
    return session.execute(select(func.count()).select_from(tasks_for(user).subquery())).scalar_one()


def task_view(session: Session, user: User, task: HumanTask) -> dict[str, Any]:
    """A task with its form schema and the data it starts from (a saved draft, or the current data)."""
    schema = forms.load_schema(task.form)
    saved = session.get(TaskDraft, (task.id, user.id))
    return {"task": task, "schema": schema, "data": saved.data if saved else current_form_data(session, task)}


def current_form_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """What the form shows first: the last payload of this step (a revision starts from it)."""
    if task.state != "ready":
        return {}
    wf = runtime.load(task.application.state.serialized, task.application.state.process_version)
    spiff_task = runtime.find_ready(wf, task.id)
    if spiff_task is None:
        return {}
    value = spiff_task.data.get(task.bpmn_id)
    return dict(value) if isinstance(value, dict) else {}


def task_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """The whole workflow data a ready task sees (draft, review comments, the document to sign)."""
    wf = runtime.load(task.application.state.serialized, task.application.state.process_version)
    spiff_task = runtime.find_ready(wf, task.id)
    return dict(spiff_task.data) if spiff_task is not None else {}


def application_data(app: Application) -> dict[str, Any]:
    """The latest data of the application's workflow, deserialized: only to act on it (documents,
    archive); pages read `Application.summary` instead."""
    return runtime.latest_data(runtime.load(app.state.serialized, app.state.process_version))


def current_steps(session: Session, app: Application) -> list[dict[str, Any]]:
    rows = session.execute(select(HumanTask).where(HumanTask.application_id == app.id, HumanTask.state == "ready")
                           .order_by(HumanTask.created_at)).scalars().all()
    return [{"task_id": t.id, "bpmn_id": t.bpmn_id, "name": t.name, "lane": t.lane, "role": t.role,
             "assignee": t.assignee.username if t.assignee else None} for t in rows]


def history(session: Session, app: Application) -> list[AuditEvent]:
    return list(session.execute(select(AuditEvent).where(AuditEvent.application_id == app.id)
                                .order_by(AuditEvent.id)).scalars())


def documents(session: Session, app: Application) -> list[Document]:
    return list(session.execute(select(Document).where(Document.application_id == app.id)
                                .order_by(Document.id)).scalars())


def signatures(session: Session, app: Application) -> list[Signature]:
    return list(session.execute(select(Signature).where(Signature.application_id == app.id)
                                .order_by(Signature.id)).scalars())


def objections(session: Session, app: Application) -> list[Objection]:
    return list(session.execute(select(Objection).where(Objection.application_id == app.id)
                                .order_by(Objection.id)).scalars())


def notices(session: Session, app: Application) -> list[PublicityNotice]:
    return list(session.execute(select(PublicityNotice).where(PublicityNotice.application_id == app.id)
                                .order_by(PublicityNotice.id)).scalars())


def step_trail(session: Session, app: Application) -> dict[str, list[str]]:
    """BPMN ids of finished and current steps, for highlighting the diagram."""
    rows = session.execute(select(HumanTask.bpmn_id, HumanTask.state).where(
        HumanTask.application_id == app.id)).all()
    return {"completed": sorted({b for b, s in rows if s == "completed"}),
            "current": sorted({b for b, s in rows if s == "ready"})}


def unread_notifications(user: User) -> Select:
    return (select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
            .order_by(Notification.id.desc()))


def colleagues_with_role(session: Session, role: str, unit_id: int) -> list[User]:
    return list(session.execute(select(User).join(RoleGrant).where(
        RoleGrant.role == role, RoleGrant.unit_id == unit_id, User.active.is_(True))
        .order_by(User.username)).scalars().unique())
