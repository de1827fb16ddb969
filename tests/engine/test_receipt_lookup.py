"""The objection receipt look-up (finding 6): number + the contact given when objecting, the same
answer for an unknown number and a wrong contact, and guesses throttled like sign-in, on both
databases."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests.driver import Driver
from workflows import clock, db, publicity
from workflows.errors import Forbidden, GrantError
from workflows.models import Application, Objection, PublicityNotice

RECEIPT = "YY20261201-0A1B2C3D"


@pytest.fixture
def filed(sessions):
    app_id = Driver(sessions).start()

    def action(session):
        app, now = session.get(Application, app_id), clock.now()
        notice = PublicityNotice(application_id=app_id, unit_id=app.unit_id, starts_at=now, ends_at=now + timedelta(days=16),
                                 last_day=clock.local_date(now + timedelta(days=15)).isoformat())
        session.add(notice)
        session.flush()
        session.add(Objection(receipt=RECEIPT, notice_id=notice.id, application_id=app_id, name="赵强",
                              contact="Zhao.Qiang@example.cn", reason="本人参与了该成果的样机研制。"))
    db.in_transaction(sessions, action)
    return sessions


def _lookup(sessions, receipt: str, contact: str, client: str = "c1") -> str:
    """As the view does: one writing transaction, committed even when refused."""
    with sessions() as session:
        db.begin_write(session)
        try:
            found = publicity.receipt_status(session, publicity.lookup_receipt(session, receipt, contact, client))
            result = found["status"]
        except Forbidden:
            result = "locked"
        except GrantError as exc:
            result = "wrong" if exc.message == "回执编号或联系方式不正确" else f"unexpected: {exc.message}"
        session.commit()
        return result


def test_number_and_contact_both_needed(filed):
    assert _lookup(filed, RECEIPT, " zhao.qiang@EXAMPLE.cn ") == "open"
    assert _lookup(filed, RECEIPT.lower(), "Zhao.Qiang@example.cn") == "open"
    assert _lookup(filed, RECEIPT, "someone@example.cn") == "wrong"
    assert _lookup(filed, RECEIPT, "") == "wrong"
    assert _lookup(filed, "YY20261201-FFFFFFFF", "Zhao.Qiang@example.cn") == "wrong"


def test_guesses_lock_the_address_then_the_receipt(filed):
    for i in range(publicity.LOOKUP_FAILURES_PER_CLIENT):
        assert _lookup(filed, f"YY20261201-{i:08X}", "x", client="guesser") == "wrong"
    assert _lookup(filed, RECEIPT, "Zhao.Qiang@example.cn", client="guesser") == "locked"
    assert _lookup(filed, RECEIPT, "Zhao.Qiang@example.cn", client="owner") == "open"  # others unaffected
    for i in range(publicity.LOOKUP_FAILURES_PER_RECEIPT):  # one receipt tried from many addresses
        _lookup(filed, RECEIPT, f"guess-{i}", client=f"addr-{i}")
    assert _lookup(filed, RECEIPT, "Zhao.Qiang@example.cn", client="owner") == "locked"
    with freeze_time(clock.now() + timedelta(minutes=16)):
        assert _lookup(filed, RECEIPT, "Zhao.Qiang@example.cn", client="owner") == "open"
