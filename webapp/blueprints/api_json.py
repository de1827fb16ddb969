"""The JSON shapes of the REST API (see webapp/openapi.py): plain dicts, datetimes as UTC ISO-8601."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from workflows import clock
from workflows.models import Application, AuditEvent, Document, HumanTask, Objection, PublicityNotice, User
from workflows.process import queries


def iso(value: datetime | None) -> str | None:
    return None if value is None else clock.as_utc(value).isoformat().replace("+00:00", "Z")


def me(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "name": user.name,
            "roles": [{"role": g.role, "unit": g.unit.code if g.unit else None} for g in user.roles]}


def application(s: Session, app: Application, with_history: bool = False,
                steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`steps` given by a list that fetched them for the whole page in one query."""
    body = {"id": app.id, "number": app.number, "kind": app.kind, "status": app.status, "title": app.title,
            "unit": app.unit.code, "representative": app.representative.username,
            "created_at": iso(app.created_at), "updated_at": iso(app.updated_at),
            "current_steps": queries.current_steps(s, app) if steps is None else steps}
    if with_history:
        body["history"] = [history_event(e) for e in queries.history(s, app)]
    return body


def history_event(event: AuditEvent) -> dict[str, Any]:
    return {"at": iso(event.at), "actor": event.actor, "action": event.action, "step": event.step}


def task(row: HumanTask) -> dict[str, Any]:
    return {"id": row.id, "application_id": row.application_id, "number": row.application.number,
            "bpmn_id": row.bpmn_id, "name": row.name, "lane": row.lane, "role": row.role,
            "assignee": row.assignee.username if row.assignee else None, "state": row.state,
            "created_at": iso(row.created_at)}


def task_columns(row: Any) -> dict[str, Any]:
    """`task` from a `queries.TASK_ROW_COLUMNS` mapping (the REST task list reads columns)."""
    return {"id": row["id"], "application_id": row["application_id"], "number": row["number"],
            "bpmn_id": row["bpmn_id"], "name": row["name"], "lane": row["lane"], "role": row["role"],
            "assignee": row["assignee"], "state": row["state"], "created_at": iso(row["created_at"])}


def task_detail(s: Session, user: User, row: HumanTask) -> dict[str, Any]:
    """The task with its form: JSON Schema, UI hints (none yet) and the data the form starts from."""
    view = queries.task_view(s, user, row)
    context = queries.task_data(s, row) if row.state == "ready" else {}
    return {**task(row), "schema": view["schema"], "ui_schema": {}, "data": view["data"], "context": context}


def notice(row: PublicityNotice) -> dict[str, Any]:
    return _notice_fields(row)


def _notice_fields(row: PublicityNotice) -> dict[str, Any]:
    app = row.application
    return {"id": row.id, "application_id": app.id, "number": app.number, "title": app.title, "kind": app.kind,
            "starts_at": iso(row.starts_at), "ends_at": iso(row.ends_at), "last_day": row.last_day}


def archived_notice(row: dict[str, Any]) -> dict[str, Any]:
    """A notice with what it publicized and how it ended (public: no objector is named)."""
    notice = row["notice"]
    return {**_notice_fields(notice), "notice_kind": notice.kind, "round": notice.round,
            "posted_title": row["title"], "closed_at": iso(notice.closed_at) if notice.closed_at else None,
            "outcome": row["outcome"], "objections": row["objections"], "unit": notice.application.unit.code}


def receipt_status(found: dict[str, Any]) -> dict[str, Any]:
    """An objection's state for the one who filed it: nothing about other objections."""
    return {"receipt": found["receipt"], "notice_id": found["notice"].id, "status": found["status"],
            "filed_at": iso(found["filed_at"]), "handled_at": iso(found["handled_at"]) if found["handled_at"] else None,
            "reasoning": found["reasoning"], "notice_outcome": found["notice_outcome"]}


def document(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "kind": doc.kind, "filename": doc.filename, "content_type": doc.content_type,
            "sha256": doc.sha256, "size": doc.size, "created_at": iso(doc.created_at)}


def objection_receipt(row: Objection) -> dict[str, Any]:
    """What the public gets back: the receipt to quote, nothing about other objections."""
    return {"receipt": row.receipt, "notice_id": row.notice_id, "status": row.status,
            "filed_at": iso(row.filed_at)}
