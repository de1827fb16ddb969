"""Notices when a task becomes ready: an in-app notification and a mail in the outbox.

The outbox is a table written in the same transaction as the task, so a mail server outage
loses nothing: `deliver_outbox` retries with back-off until the server accepts the mail.
"""
from __future__ import annotations

import smtplib
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, i18n, settings
from .errors import NotFound
from .models import HumanTask, Notification, OutboxMail, User

MAX_ATTEMPTS = 10


def _notice(user: User, task: HumanTask, message: i18n.Message) -> Notification:
    """Stored with its template so each reader sees it in their language; step names, which are
    catalogue entries themselves, are kept as msgids."""
    params = {k: {"msgid": v.template} if isinstance(v, i18n.Message) else v for k, v in message.params.items()}
    return Notification(user_id=user.id, application_id=task.application_id, task_id=task.id, message=message,
                        template=message.template, params=params)


def task_ready(session: Session, task: HumanTask, users: list[User]) -> None:
    app = task.application
    if app.title:
        message = i18n.msg("{number}「{title}」待您处理：{task}", number=app.number, title=app.title,
                           task=i18n.msg(task.name))
    else:
        message = i18n.msg("{number} 新申请待您处理：{task}", number=app.number, task=i18n.msg(task.name))
    link = f"{settings.get().base_url}/tasks/{task.id}"
    for user in users:
        session.add(_notice(user, task, message))
        if user.email:
            session.add(OutboxMail(to=user.email, subject=f"[职务科技成果赋权] {message}",
                                   body=f"{user.name}，您好：\n\n{message}\n请登录系统处理：{link}\n"))


def remind_overdue(session: Session) -> int:
    """Tasks waiting longer than the configured days get one reminder per period."""
    cfg = settings.get()
    cutoff = clock.now() - timedelta(days=cfg.reminder_after_days)
    rows = session.execute(select(HumanTask).where(
        HumanTask.state == "ready", HumanTask.created_at <= cutoff,
        (HumanTask.reminded_at.is_(None)) | (HumanTask.reminded_at <= cutoff))).scalars().all()
    for task in rows:
        users = [task.assignee] if task.assignee else []
        if not users:
            from .models import RoleGrant
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


def deliver_outbox(session: Session, limit: int = 50) -> int:
    """Send due mails; on failure keep them and try again later with back-off."""
    cfg = settings.get()
    now = clock.now()
    mails = session.execute(select(OutboxMail).where(
        OutboxMail.sent_at.is_(None), OutboxMail.attempts < MAX_ATTEMPTS, OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.id).limit(limit)).scalars().all()
    if not mails:
        return 0
    sent = 0
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=10) as smtp:
            for mail in mails:
                smtp.send_message(_message(cfg.mail_sender, mail))
                mail.sent_at = clock.now()
                sent += 1
    except (OSError, smtplib.SMTPException) as exc:
        for mail in mails:
            if mail.sent_at is None:
                mail.attempts += 1
                mail.last_error = str(exc)[:500]
                mail.next_attempt_at = now + timedelta(minutes=2 ** min(mail.attempts, 8))
    return sent


def _message(sender: str, mail: OutboxMail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, mail.to, mail.subject
    msg.set_content(mail.body)
    return msg


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
