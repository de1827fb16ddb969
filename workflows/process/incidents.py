"""Incidents: a timer step that failed, kept for administrators as Camunda keeps its incidents.

The sweep fires each due instance in its own savepoint; when one fails its changes are rolled
back, the error is recorded here and the instance is left alone until `next_retry_at`, which
backs off (1, 2, 4 … minutes, at most a day). The other instances fire as if nothing happened.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, Exists, Select, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from workflows import clock
from workflows.models import Incident

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(days=1)
log = logging.getLogger("workflows.process.incidents")


def open_incident(session: Session, application_id: int, kind: str = "timer") -> Incident | None:
    return session.execute(select(Incident).where(
        Incident.application_id == application_id, Incident.kind == kind,
        Incident.resolved_at.is_(None))).scalars().first()


def record_failure(session: Session, application_id: int, exc: BaseException, kind: str = "timer") -> Incident:
    """Open an incident (or count one more attempt on the open one) and schedule the retry."""
    now = clock.now()
    incident = open_incident(session, application_id, kind)
    if incident is None:
        incident = Incident(application_id=application_id, kind=kind, attempts=0, created_at=now)
        session.add(incident)
    incident.attempts += 1
    incident.error = f"{type(exc).__name__}: {exc}"[:4000]
    incident.updated_at = now
    incident.next_retry_at = now + min(LONGEST_RETRY, FIRST_RETRY * 2 ** min(incident.attempts - 1, 12))
    session.flush()
    # The error text stays in the table (administrators only): no personal data in the log.
    log.warning("timer step of application %s failed (%s), attempt %s", application_id,
                type(exc).__name__, incident.attempts)
    return incident


def resolve(session: Session, application_id: int, kind: str = "timer") -> None:
    incident = open_incident(session, application_id, kind)
    if incident is not None:
        incident.resolved_at = incident.updated_at = clock.now()


def held_back(now: datetime | BindParameter[datetime]) -> Select[int]:
    """Applications whose failed step waits for its retry time: the sweep skips them."""
    return select(Incident.application_id).where(Incident.resolved_at.is_(None), Incident.next_retry_at > now)


def open_on(application_id: ColumnElement[int] | InstrumentedAttribute[int], kind: str = "timer") -> Exists:
    """Whether an incident of `kind` is open on the application (a column of the sweep's read of a
    due instance: an instance without one is not asked again to resolve it)."""
    return exists().where(Incident.application_id == application_id, Incident.kind == kind,
                          Incident.resolved_at.is_(None))


def listing(session: Session, include_resolved: bool = False) -> list[Incident]:
    query = select(Incident).order_by(Incident.resolved_at.is_not(None), Incident.updated_at.desc())
    if not include_resolved:
        query = query.where(Incident.resolved_at.is_(None))
    return list(session.execute(query.limit(500)).scalars())
