"""Past notices on the public board without walking grants: the archive's rows, each on an
application of its own, for the web, API and browser tests."""
from __future__ import annotations

from datetime import timedelta

from workflows import clock
from workflows.models import Application, Objection, PublicityNotice

# (title, notice kind, notice outcome, statuses of its objections)
ARCHIVE = [
    ("一种储能材料", "grant", "passed", []),
    ("一种量子传感器", "grant", "passed", ["dismissed", "dismissed"]),
    ("一种医用导管", "price", "upheld", ["upheld", "superseded"]),
    ("一种种植方法", "leader_reward", "restarted", ["dismissed"]),
    ("一种通信协议", "grant", "passed", ["open"]),
]


def past_notices(driver, rows=ARCHIVE) -> list[int]:
    """Notices ended one day apart (the first most recently); returns their ids in that order."""
    now = clock.now()
    app_ids = [driver.start() for _ in rows]

    def action(session):
        ids = []
        for i, (app_id, (title, kind, outcome, objections)) in enumerate(zip(app_ids, rows, strict=True)):
            app = session.get(Application, app_id)
            app.title = title
            ends = now - timedelta(days=1 + i)
            notice = PublicityNotice(application_id=app_id, unit_id=app.unit_id, starts_at=ends - timedelta(days=16),
                                     ends_at=ends, last_day=clock.local_date(ends - timedelta(days=1)).isoformat(),
                                     closed_at=ends, outcome=outcome, kind=kind, summary=_summary(title, kind))
            session.add(notice)
            session.flush()
            for j, status in enumerate(objections):
                session.add(Objection(receipt=f"YYTEST-{notice.id}-{j}", notice_id=notice.id, application_id=app_id,
                                      name="某人", contact="13900000000", reason="理由理由理由理由理由", status=status))
            ids.append(notice.id)
        return ids
    return driver.run(action)


def _summary(title: str, kind: str) -> dict:
    """What open_publicity keeps with each kind of notice (see workflows/process/operations.py)."""
    summary: dict = {"draft": {"achievement": {"title": title}}}
    if kind == "price":
        summary.update(grant_kind="ownership", plan={"mode": "transfer", "price": "1234567.50",
                                                      "counterparty": {"name": "深圳某科技有限公司"}})
    elif kind == "leader_reward":
        summary.update(grant_kind="ownership", to_people="880000.00", rewards=[
            {"name": "王芳", "leader_post": "other", "contribution": "负责实验验证", "mode": "cash", "amount": "88000.00"}])
    return summary


def open_notice(driver, title: str = "一种柔性传感器") -> int:
    """A notice under publicity as a row only: enough for pages and refused input, not for an
    objection that reaches a process (walk a grant for that)."""
    app_id = driver.start()

    def action(session):
        app, now = session.get(Application, app_id), clock.now()
        app.title = title
        notice = PublicityNotice(application_id=app_id, unit_id=app.unit_id, starts_at=now,
                                 ends_at=now + timedelta(days=16),
                                 last_day=clock.local_date(now + timedelta(days=15)).isoformat(),
                                 summary=_summary(title, "grant"))
        session.add(notice)
        session.flush()
        return notice.id
    return driver.run(action)
