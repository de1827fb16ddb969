"""Notices when a task becomes ready: an in-app notification and a mail in the outbox.

The outbox is a table written in the same transaction as the task, so a mail server outage
loses nothing: `deliver_outbox` retries with back-off until the server accepts the mail.
"""
from __future__ import annotations

import smtplib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import Protocol, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from workflows import clock, db, i18n, settings
from workflows.errors import NotFound
from workflows.models import Application, HumanTask, Notification, OutboxMail, User

MAX_ATTEMPTS = 10


def _notice(user: User, task: HumanTask, message: i18n.Message) -> Notification:
    """Stored with its template so each reader sees it in their language; step names, which are
    catalogue entries themselves, are kept as msgids."""
    params = {k: {"msgid": v.template} if isinstance(v, i18n.Message) else v for k, v in message.params.items()}
    return Notification(user_id=user.id, application_id=task.application_id, task_id=task.id, message=message,
                        template=message.template, params=params)


class Recipient(Protocol):
    """Who is told: a User, or a row of just these columns (no entity to build for a notice)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...


_INSERT_NOTICE, _INSERT_MAIL = insert(cast(Table, Notification.__table__)), insert(cast(Table, OutboxMail.__table__))


def task_ready(session: Session, task: HumanTask, users: Sequence[Recipient]) -> None:
    ready_notices(session, task.application, task.id, task.name, users)


def ready_notices(session: Session, app: Application, task_id: str, task_name: str,
                  users: Sequence[Recipient]) -> None:
    """The notices of a task that became ready, inserted at once with Core statements (one per
    table, executemany): they are only ever read back by queries, so no ORM unit of work."""
    if not users:
        return
    if app.title:
        message = i18n.msg("{number}「{title}」待您处理：{task}", number=app.number, title=app.title,
                           task=i18n.msg(task_name))
    else:
        message = i18n.msg("{number} 新申请待您处理：{task}", number=app.number, task=i18n.msg(task_name))
    params = {k: {"msgid": v.template} if isinstance(v, i18n.Message) else v for k, v in message.params.items()}
    link = f"{settings.get().base_url}/tasks/{task_id}"
    now = clock.now()
    connection = session.connection()  # Core statements: no ORM execution around them
    connection.execute(_INSERT_NOTICE, [
        {"user_id": user.id, "application_id": app.id, "task_id": task_id, "message": str(message),
         "template": message.template, "params": params, "created_at": now} for user in users])
    mails = [{"to": user.email, "subject": f"[职务科技成果赋权] {message}",
              "body": f"{user.name}，您好：\n\n{message}\n请登录系统处理：{link}\n",
              "created_at": now, "attempts": 0, "next_attempt_at": now} for user in users if user.email]
    if mails:
        connection.execute(_INSERT_MAIL, mails)


def announce(session: Session, users: list[User], application_id: int, message: i18n.Message, path: str) -> None:
    """A notice that is no task (a conversion period about to lapse): in-app and by mail."""
    params = {k: {"msgid": v.template} if isinstance(v, i18n.Message) else v for k, v in message.params.items()}
    link = f"{settings.get().base_url}{path}"
    for user in users:
        session.add(Notification(user_id=user.id, application_id=application_id, message=message,
                                 template=message.template, params=params))
        if user.email:
            session.add(OutboxMail(to=user.email, subject=f"[职务科技成果赋权] {message}"[:300],
                                   body=f"{user.name}，您好：\n\n{message}\n详情：{link}\n"))


def reminders_due(now: datetime) -> tuple[tuple[ColumnElement[bool], ...], tuple[ColumnElement[bool], ...]]:
    """The two ranges of `ix_tasks_remind` holding the tasks due for a reminder: never reminded
    and old enough, or last reminded a period ago."""
    cutoff = now - timedelta(days=settings.get().reminder_after_days)
    ready = HumanTask.state == "ready"
    return ((ready, HumanTask.reminded_at.is_(None), HumanTask.created_at <= cutoff),
            (ready, HumanTask.reminded_at <= cutoff))


def remind_overdue(session: Session, limit: int = 500) -> int:
    """Tasks waiting longer than the configured days get one reminder per period (at most
    `limit` per sweep, the rest on the next). Two reads of `ix_tasks_remind`, due rows only:
    never reminded and old enough, or last reminded a period ago."""
    cfg = settings.get()
    never, again = reminders_due(clock.now())
    rows = list(session.execute(select(HumanTask).where(*never).limit(limit)).scalars())
    if len(rows) < limit:
        rows += session.execute(select(HumanTask).where(*again).limit(limit - len(rows))).scalars().all()
    for task in rows:
        users: Sequence[User] = [task.assignee] if task.assignee else []
        if not users:
            from workflows.models import RoleGrant
            users = session.execute(select(User).join(RoleGrant).where(
                RoleGrant.role == task.role, RoleGrant.unit_id == task.unit_id)).scalars().unique().all()
        for user in users:
            session.add(_notice(user, task, i18n.msg("催办：{number} {task} 已等待超过{days}天",
                                                     number=task.application.number, task=i18n.msg(task.name),
                                                     days=cfg.reminder_after_days)))
            if user.email:
                session.add(OutboxMail(to=user.email, subject=f"[催办] {task.application.number} {task.name}",
                                       body=f"任务“{task.name}”已等待超过{cfg.reminder_after_days}天，请尽快处理。"))
        task.reminded_at = clock.now()
    return len(rows)


def deliver_outbox(sessions: sessionmaker[Session], limit: int = 50) -> int:
    """Send due mails; on failure keep them and try again later with back-off.

    Three short transactions, so several sweepers at once send each mail once: claim a batch
    (its rows locked with SKIP LOCKED on PostgreSQL; SQLite writers queue), send, and record
    each mail as sent as soon as the server took it. A sender that dies mid-batch leaves a
    claim that lapses after CLAIM_LEASE; those mails go out again then (at least once)."""
    claimer = uuid.uuid4().hex
    batch = db.in_transaction(sessions, lambda s: _claim(s, claimer, limit))
    if not batch:
        return 0
    cfg = settings.get()
    sent = 0
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=10) as smtp:
            for mail in batch:
                smtp.send_message(_message(cfg.mail_sender, mail))
                db.in_transaction(sessions, partial(_mark_sent, claimer=claimer, mail_id=mail.id))
                sent += 1
    except (OSError, smtplib.SMTPException) as exc:
        error = str(exc)
        db.in_transaction(sessions, lambda s: _postpone(s, claimer, error))
    return sent


CLAIM_LEASE = timedelta(minutes=5)


def due_mail(now: datetime) -> Select[int]:
    """Unsent mail whose time has come, read through the index of unsent rows only."""
    return (select(OutboxMail.id).where(OutboxMail.sent_at.is_(None), OutboxMail.next_attempt_at <= now,
                                        OutboxMail.attempts < MAX_ATTEMPTS,
                                        or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until < now))
            .order_by(OutboxMail.next_attempt_at))


def _claim(session: Session, claimer: str, limit: int) -> list[OutboxMail]:
    now = clock.now()
    ids = session.execute(due_mail(now).limit(limit).with_for_update(skip_locked=True)).scalars().all()
    if not ids:
        return []
    session.execute(update(OutboxMail).where(OutboxMail.id.in_(ids))
                    .values(claimed_by=claimer, claimed_until=now + CLAIM_LEASE)
                    .execution_options(synchronize_session=False))
    return list(session.execute(select(OutboxMail).where(OutboxMail.id.in_(ids))
                                .order_by(OutboxMail.id)).scalars())


def _mark_sent(session: Session, claimer: str, mail_id: int) -> None:
    session.execute(update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.claimed_by == claimer)
                    .values(sent_at=clock.now(), claimed_by=None, claimed_until=None))


def _postpone(session: Session, claimer: str, error: str) -> None:
    """The server refused or is down: the rest of the batch waits, longer after each attempt."""
    now = clock.now()
    for mail in session.execute(select(OutboxMail).where(OutboxMail.claimed_by == claimer,
                                                         OutboxMail.sent_at.is_(None))).scalars():
        mail.attempts += 1
        mail.last_error = error[:500]
        mail.next_attempt_at = now + timedelta(minutes=2 ** min(mail.attempts, 8))
        mail.claimed_by = mail.claimed_until = None


def _message(sender: str, mail: OutboxMail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, mail.to, mail.subject
    msg.set_content(mail.body)
    return msg


# Built once (a write closes a task every time): the statement and its cache key are reused.
# Bound parameters cannot be evaluated against loaded objects, hence no synchronization here.
_CLOSE_NOTICES = (update(Notification).where(Notification.task_id == bindparam("closed_task"), Notification.read_at.is_(None))
                  .values(read_at=bindparam("now")).execution_options(synchronize_session=False))


def task_closed(session: Session, task_id: str) -> int:
    """A done or cancelled task asks nothing of anyone any more: its notices stop counting as unread."""
    result = session.execute(_CLOSE_NOTICES, {"closed_task": task_id, "now": clock.now()})
    for obj in list(session.identity_map.values()):  # not synchronized by the statement: reread if used
        if isinstance(obj, Notification) and obj.task_id == task_id:
            session.expire(obj, ["read_at"])
    return int(getattr(result, "rowcount", 0))


def mark_read(session: Session, user: User, notification_id: int | None = None) -> int:
    """Mark one of the user's notices (or all of them) as read; others' notices are not found."""
    query = select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_id is not None:
        notice = session.get(Notification, notification_id)
        if notice is None or notice.user_id != user.id:
            raise NotFound(i18n.msg("通知不存在"))
        query = query.where(Notification.id == notification_id)
    rows = session.execute(query).scalars().all()
    for row in rows:
        row.read_at = clock.now()
    return len(rows)
