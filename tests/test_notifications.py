"""Notices when a task becomes ready: an in-app notification and a mail through the outbox,
delivered to a real SMTP server on loopback (aiosmtpd). A mail server outage loses nothing:
the mail waits with back-off and goes out exactly once when the server is back."""
from __future__ import annotations

import copy
import shutil
import socket
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from freezegun import freeze_time
from sqlalchemy import select

from webapp import create_app
from workflows import clock, demo, settings
from workflows.models import HumanTask, Notification, OutboxMail, Unit, User
from workflows.people import notify
from workflows.process import engine, forms


class Inbox:
    """aiosmtpd handler: keeps every message the server accepted."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox, port = Inbox(), _free_port()
    servers = []

    def start():
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        servers.append(controller)
        return controller

    start()
    yield inbox, port, servers, start
    for controller in servers:
        if controller._thread is not None:
            controller.stop()


@pytest.fixture
def app(tmp_path, sqlite_template, smtp):
    _inbox, port, _servers, _start = smtp
    path = tmp_path / "notify.db"
    shutil.copy(sqlite_template, path)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "SMTP_HOST": "127.0.0.1",
                      "SMTP_PORT": port, "MAIL_SENDER": "grants@test.example"})
    assert settings.get().smtp_port == port  # create_app configured the engine
    with app.extensions["grants_sessions"]() as session:
        demo.seed(session)
        session.commit()
    yield app
    app.extensions["grants_engine"].dispose()


def _user(session, username):
    return session.execute(select(User).where(User.username == username)).scalar_one()


def _subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def _deliver(app) -> int:
    return notify.deliver_outbox(app.extensions["grants_sessions"])


def test_ready_task_notifies_in_app_and_by_mail(app, smtp):
    inbox, _port, _servers, _start = smtp
    with app.extensions["grants_sessions"]() as session:
        unit = session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        application = engine.start_application(session, _user(session, "researcher1"), unit, "ownership")
        session.commit()
        task = session.execute(select(HumanTask).where(HumanTask.application_id == application.id)).scalar_one()
        notes = session.execute(select(Notification).where(Notification.task_id == task.id)).scalars().all()
        assert [n.user_id for n in notes] == [_user(session, "researcher1").id]
        assert application.number in notes[0].message and task.name in notes[0].message
        mails = session.execute(select(OutboxMail)).scalars().all()
        assert [m.to for m in mails] == ["researcher1@example.org"] and mails[0].sent_at is None
        subject = mails[0].subject

    assert _deliver(app) == 1
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["researcher1@example.org"] and message["To"] == "researcher1@example.org"
    assert message["From"] == "grants@test.example"
    assert _subject(message) == subject and "待您处理" in subject and "职务科技成果赋权" in subject
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert f"/tasks/{task.id}" in body
    assert _deliver(app) == 0 and len(inbox.messages) == 1  # sent once only
    with app.extensions["grants_sessions"]() as session:
        assert session.execute(select(OutboxMail)).scalar_one().sent_at is not None


def test_an_outage_keeps_mail_and_retries_later(app, smtp):
    inbox, _port, servers, start = smtp
    with app.extensions["grants_sessions"]() as session:
        unit = session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        application = engine.start_application(session, _user(session, "researcher1"), unit, "ownership")
        session.commit()
        app_id = application.id
    assert _deliver(app) == 1
    servers[-1].stop()

    # The draft is submitted while the mail server is down: three consents become ready.
    with app.extensions["grants_sessions"]() as session:
        task = session.execute(select(HumanTask).where(HumanTask.application_id == app_id)).scalar_one()
        draft = copy.deepcopy(forms.load_schema("ownership_draft.schema.json")["examples"][0])
        engine.complete_task(session, _user(session, "researcher1"), task.id, draft)
        session.commit()
    before = clock.now()
    assert _deliver(app) == 0
    with app.extensions["grants_sessions"]() as session:
        waiting = session.execute(select(OutboxMail).where(OutboxMail.sent_at.is_(None))).scalars().all()
        assert sorted(m.to for m in waiting) == [f"researcher{i}@example.org" for i in (1, 2, 3)]
        for mail in waiting:
            assert mail.attempts == 1 and mail.last_error
            assert mail.next_attempt_at > before
        retry_at = max(m.next_attempt_at for m in waiting)
    assert _deliver(app) == 0  # not due yet: back-off, no hammering
    with app.extensions["grants_sessions"]() as session:
        assert {m.attempts for m in session.execute(select(OutboxMail).where(OutboxMail.sent_at.is_(None)))
                .scalars()} == {1}

    start()  # the server is back, on the same port
    with freeze_time(retry_at + timedelta(seconds=1), real_asyncio=True):
        assert _deliver(app) == 3
        assert _deliver(app) == 0
    assert len(inbox.messages) == 4
    delivered = sorted(r[0] for r, _m in inbox.messages[1:])
    assert delivered == [f"researcher{i}@example.org" for i in (1, 2, 3)]
    assert all("知情同意" in _subject(m) or "待您处理" in _subject(m) for _r, m in inbox.messages[1:])
    with app.extensions["grants_sessions"]() as session:
        assert session.execute(select(OutboxMail).where(OutboxMail.sent_at.is_(None))).scalars().all() == []


def test_a_queue_task_notifies_the_units_officers_not_the_team(app, smtp):
    inbox, _port, _servers, _start = smtp
    with app.extensions["grants_sessions"]() as session:
        unit = session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        app_id = engine.start_application(session, _user(session, "researcher1"), unit, "ownership").id
        session.commit()
    with app.extensions["grants_sessions"]() as session:
        task = session.execute(select(HumanTask).where(HumanTask.application_id == app_id)).scalar_one()
        draft = copy.deepcopy(forms.load_schema("ownership_draft.schema.json")["examples"][0])
        engine.complete_task(session, _user(session, "researcher1"), task.id, draft)
        session.commit()
        for who in ("researcher1", "researcher2", "researcher3"):
            consent = session.execute(select(HumanTask).where(
                HumanTask.application_id == app_id, HumanTask.state == "ready",
                HumanTask.assignee_id == _user(session, who).id)).scalar_one()
            engine.complete_task(session, _user(session, who), consent.id, {"agree": True})
            session.commit()
        review = session.execute(select(HumanTask).where(HumanTask.application_id == app_id,
                                                         HumanTask.bpmn_id == "review")).scalar_one()
        notified = session.execute(select(User.username).join(Notification, Notification.user_id == User.id)
                                   .where(Notification.task_id == review.id)).scalars().all()
        assert notified == ["tto1"]
    _deliver(app)
    review_mails = [r for r, m in inbox.messages if review.name in _subject(m)]
    assert review_mails == [["tto1@example.org"]]


def test_a_task_waiting_too_long_gets_one_reminder_per_period(app):
    with app.extensions["grants_sessions"]() as session:
        unit = session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        engine.start_application(session, _user(session, "researcher1"), unit, "ownership")
        session.commit()
    days = settings.get().reminder_after_days

    def remind_at(when) -> int:
        with freeze_time(when), app.extensions["grants_sessions"]() as session:
            count = notify.remind_overdue(session)
            session.commit()
            return count

    start = clock.now()
    assert remind_at(start + timedelta(days=days) - timedelta(minutes=1)) == 0
    assert remind_at(start + timedelta(days=days, minutes=1)) == 1
    assert remind_at(start + timedelta(days=days, minutes=2)) == 0  # already reminded this period
    assert remind_at(start + timedelta(days=2 * days, minutes=2)) == 1
    with app.extensions["grants_sessions"]() as session:
        reminders = session.execute(select(Notification).where(Notification.message.like("催办%"))).scalars().all()
        assert len(reminders) == 2 and all(n.user_id == _user(session, "researcher1").id for n in reminders)
