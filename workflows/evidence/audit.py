"""Append-only audit trail after Certificate Transparency (RFC 6962): one Merkle log per unit.

Each event is a leaf anyone can recompute from its fields (SHA-256, no secret). A log's head row
(size, root, frontier) is locked only by appends to that unit's log. Signed checkpoints (tree heads,
Ed25519, key in a file) pin the past: they are kept in the database and appended, fsynced, to
<instance>/anchors/checkpoints.jsonl. Someone with database write access can rewrite only the events
after a log's last checkpoint (at most about one sweep interval, 1 s, while `grants run`/`grants tick`
runs); anything older contradicts a signature they cannot make.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, Table, bindparam, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session, SessionTransaction
from sqlalchemy.orm.util import identity_key

from workflows import clock, db, settings
from workflows.models import Application, AuditCheckpoint, AuditEvent, AuditLog, FormSubmission, HumanTask, User

from . import keys
from .pack_verify import (
    CHECKPOINT_FORMAT,
    EMPTY_ROOT,
    canonical,
    checkpoint_signature_ok,
    digest,
    frontier_append,
    frontier_root,
    inclusion_proofs,
    leaf_hash,
)

__all__ = [
    "append_pending",
    "beijing",
    "canonical",
    "checkpoint",
    "checkpoint_all",
    "checkpoint_moved",
    "digest",
    "latest_checkpoint",
    "leaf_fields",
    "pending",
    "record",
    "record_submission",
    "verify",
]
SYSTEM_LOG = 0
BATCH = 2000


def beijing(value: datetime) -> str:
    """An audit time in Beijing time with the zone named, e.g. 2026-12-01T20:00:00+08:00."""
    return clock.as_utc(value).astimezone(clock.SHANGHAI).isoformat()


def leaf_fields(event: AuditEvent) -> dict[str, Any]:
    """Everything the leaf hash covers, as the pack prints it."""
    return {"v": event.leaf_version, "log_id": event.log_id, "seq": event.seq, "app_seq": event.app_seq,
            "at": clock.as_utc(event.at).isoformat(), "unit_id": event.unit_id,
            "application_id": event.application_id, "actor": event.actor, "action": event.action,
            "step": event.step, "detail": event.detail, "data_digest": event.data_digest}


def _lock_head(session: Session, log_id: int) -> AuditLog:
    """Lock this log's head only (created on first use without racing a concurrent creator)."""
    query = (select(AuditLog).where(AuditLog.log_id == log_id).with_for_update()
             .execution_options(populate_existing=True))
    head = session.execute(query).scalar_one_or_none()
    if head is None:
        _create_head(session, log_id)
        head = session.execute(query).scalar_one()
    return head


def _create_head(session: Session, log_id: int) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(AuditLog).values(log_id=log_id, size=0, root=EMPTY_ROOT, frontier=[])
                    .on_conflict_do_nothing(index_elements=["log_id"]))


def _log_of(session: Session, unit_id: int | None, application_id: int | None) -> int:
    if unit_id is None and application_id is not None:
        unit_id = session.execute(select(Application.unit_id).where(Application.id == application_id)).scalar()
    return unit_id if unit_id is not None else SYSTEM_LOG


# -- appending: queued in the transaction, appended in one step just before it commits ------------
# A log's head row is locked from the append to the commit (every writer of that unit queues on
# it), so the events of a transaction are appended last: `record` queues the event in the session,
# `append_pending` (run by the commit, see `_before_commit` and workflows.db.WorkSession) locks
# each head once, numbers the events and writes them with Core statements. A savepoint rolled
# back drops the events queued inside it (`_after_soft_rollback`); a transaction rolled back drops
# them all. Code that reads this transaction's own events calls `append_pending` first.
_PENDING = "audit_pending"
_MARKS = "audit_savepoint_marks"


class _Pending:
    __slots__ = ("event", "submission")

    def __init__(self, event: AuditEvent):
        self.event = event
        self.submission: dict[str, Any] | None = None


def record(session: Session, *, actor: str, action: str, unit_id: int | None = None,
           application_id: int | None = None, step: str = "", data: Any = None,
           detail: dict[str, Any] | None = None) -> AuditEvent:
    """Queue one event for its unit's log, in the caller's transaction; it is appended (given its
    log, seq, app_seq, leaf hash and id) when the transaction commits or `append_pending` runs."""
    event = AuditEvent(leaf_version=2, at=clock.as_utc(clock.now()), unit_id=unit_id, application_id=application_id,
                       actor=actor, action=action, step=step, detail=json.loads(canonical(detail or {})),
                       data_digest=digest(data if data is not None else {}))
    if not session.in_transaction():  # the event belongs to a transaction: its rollback drops it
        session.connection()
    session.info.setdefault(_PENDING, []).append(_Pending(event))
    return event


def record_submission(session: Session, event: AuditEvent, task: HumanTask, user: User, payload: Any) -> None:
    """Keep the submitted form itself, with the digest its (queued) audit event covers; written
    with the event, its revision counted then (the instance's state row is locked by then)."""
    for entry in reversed(session.info.get(_PENDING, [])):
        if entry.event is event:
            entry.submission = {
                "application_id": task.application_id, "task_id": task.id, "step": task.bpmn_id, "form": task.form,
                "user_id": user.id, "actor": user.username, "submitted_at": event.at,
                "payload": json.loads(canonical(payload if payload is not None else {})),
                "payload_digest": event.data_digest}
            return
    raise ValueError("record_submission: the event is not queued in this session")


def pending(session: Session) -> int:
    """How many events this transaction has queued and not yet appended."""
    return len(session.info.get(_PENDING, ()))


def append_pending(session: Session) -> None:
    """Append the queued events: per log (in log order, so two transactions never wait on each
    other crosswise) lock the head with the applications' last app_seq in one statement, insert
    the events, move the head; then write the queued form submissions."""
    entries: list[_Pending] = session.info.get(_PENDING) or []
    if not entries:
        return
    session.info[_PENDING] = []
    marks: dict[Any, int] = session.info.get(_MARKS, {})
    for transaction in marks:
        marks[transaction] = 0
    session.flush()  # everything else first: the lock is taken last
    by_log: dict[int, list[_Pending]] = {}
    for entry in entries:
        entry.event.log_id = _log_of(session, entry.event.unit_id, entry.event.application_id)
        by_log.setdefault(entry.event.log_id, []).append(entry)
    for log_id in sorted(by_log):
        _append_to_log(session, log_id, by_log[log_id])
    submissions = [entry for entry in entries if entry.submission is not None]
    for entry in submissions:
        values = dict(entry.submission or {}, audit_event_id=entry.event.id)
        values["b_application"], values["b_step"] = values["application_id"], values["step"]
        session.execute(_INSERT_SUBMISSION, values)


# The statements of every append, built once (their cache keys are memoized): the revision of a
# submission is counted in its INSERT; the head of a log with one application's last app_seq.
_SUBMISSION_REVISION = select(func.count(FormSubmission.id) + 1).where(
    FormSubmission.application_id == bindparam("b_application"), FormSubmission.step == bindparam("b_step"))
_INSERT_SUBMISSION = insert(cast(Table, FormSubmission.__table__)).values(revision=_SUBMISSION_REVISION.scalar_subquery())
_HEAD_ONE = (select(AuditLog.size, AuditLog.frontier,
                    select(func.max(AuditEvent.app_seq)).where(AuditEvent.application_id == bindparam("b_application"))
                    .scalar_subquery())
             .where(AuditLog.log_id == bindparam("b_log")).with_for_update(of=AuditLog))
_UPDATE_HEAD = update(cast(Table, AuditLog.__table__)).where(cast(Table, AuditLog.__table__).c.log_id == bindparam("b_log"))


def _head(session: Session, log_id: int, application_ids: list[int]) -> Any:
    if len(application_ids) == 1:
        return session.execute(_HEAD_ONE, {"b_log": log_id, "b_application": application_ids[0]}).first()
    return session.execute(_head_query(log_id, application_ids)).first()


def _head_query(log_id: int, application_ids: list[int]) -> Any:
    last = [select(func.max(AuditEvent.app_seq)).where(AuditEvent.application_id == app_id).scalar_subquery()
            for app_id in application_ids]
    return (select(AuditLog.size, AuditLog.frontier, *last).where(AuditLog.log_id == log_id)
            .with_for_update(of=AuditLog))


def _append_to_log(session: Session, log_id: int, entries: list[_Pending]) -> None:
    application_ids = sorted({e.event.application_id for e in entries if e.event.application_id is not None})
    row = _head(session, log_id, application_ids)
    if row is None:
        _create_head(session, log_id)
        row = _head(session, log_id, application_ids)
    size, frontier = row[0], [list(x) for x in row[1]]
    app_seqs = {app_id: last or 0 for app_id, last in zip(application_ids, row[2:], strict=True)}
    rows = []
    for entry in entries:
        event = entry.event
        event.seq, size = size, size + 1
        if event.application_id is not None:  # an application's events all go to its unit's log: the lock covers them
            event.app_seq = app_seqs[event.application_id] = app_seqs[event.application_id] + 1
        event.leaf_hash = leaf_hash(leaf_fields(event))
        frontier_append(frontier, event.leaf_hash)
        rows.append({column: getattr(event, column) for column in _EVENT_COLUMNS})
    inserted = session.execute(_INSERT_EVENTS, rows)
    ids: list[int] = list(inserted.scalars())
    for entry, event_id in zip(entries, ids, strict=True):
        entry.event.id = event_id
    session.execute(_UPDATE_HEAD, {"b_log": log_id, "size": size, "frontier": frontier, "root": frontier_root(frontier)})
    cached = session.identity_map.get(identity_key(AuditLog, log_id))
    if cached is not None:  # an ORM copy of the head read earlier in this session is stale now
        session.expire(cached)


_EVENTS = cast(Table, AuditEvent.__table__)
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)  # built once, as the others
_EVENT_COLUMNS = ("log_id", "seq", "app_seq", "leaf_version", "at", "unit_id", "application_id", "actor",
                  "action", "step", "detail", "data_digest", "leaf_hash")


def _before_commit(session: Session) -> None:
    """A root commit appends what is queued. (A savepoint's release fires this too: it keeps its
    events queued for the root's commit. workflows.db.WorkSession.commit appends even when a
    savepoint is still open.)"""
    if session.info.get(_PENDING) and session.get_nested_transaction() is None:
        append_pending(session)


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.nested:
        mark = session.info.get(_MARKS, {}).pop(previous, None)
        if mark is not None and session.info.get(_PENDING):
            del session.info[_PENDING][mark:]
    elif previous.parent is None:
        session.info.pop(_PENDING, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (appended) or rolled back: nothing stays queued
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


sa_event.listen(Session, "before_commit", _before_commit)
sa_event.listen(Session, "after_transaction_create", _after_transaction_create)
sa_event.listen(Session, "after_soft_rollback", _after_soft_rollback)
sa_event.listen(Session, "after_transaction_end", _after_transaction_end)
db.before_commit_hooks.append(append_pending)


# -- checkpoints ---------------------------------------------------------------------------------
def anchor_path() -> Path:
    return Path(settings.get().instance_dir) / "anchors" / "checkpoints.jsonl"


def _append_anchor(lines: list[str]) -> None:
    """Append and fsync; the directory too when the file is new."""
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(line + "\n" for line in lines).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _after_commit(session: Session) -> None:
    lines = session.info.pop("audit_anchor_lines", [])
    if lines:
        _append_anchor(lines)


def _after_rollback(session: Session) -> None:
    session.info.pop("audit_anchor_lines", None)


def _queue_anchor(session: Session, body: dict[str, Any]) -> None:
    """Write to the anchor file only once the checkpoint is committed: a rolled-back one never existed."""
    if not session.info.get("audit_anchor_listening"):
        sa_event.listen(session, "after_commit", _after_commit)
        sa_event.listen(session, "after_rollback", _after_rollback)
        session.info["audit_anchor_listening"] = True
    session.info.setdefault("audit_anchor_lines", []).append(canonical(body))


def _sign(log_id: int, size: int, root: str, at: datetime) -> dict[str, Any]:
    key = keys.checkpoint_key()
    body = {"format": CHECKPOINT_FORMAT, "log_id": log_id, "size": size, "root": root,
            "time": beijing(at.replace(microsecond=0)), "key_id": keys.public_key_id(key.public_key())}
    body["signature"] = base64.b64encode(key.sign(canonical(body).encode())).decode()
    return body


def checkpoint(session: Session, log_id: int) -> dict[str, Any] | None:
    """Sign the log's current head (in this transaction) unless it is signed already."""
    append_pending(session)
    if session.get(AuditLog, log_id) is None:
        return None
    head = _lock_head(session, log_id)
    existing = session.execute(select(AuditCheckpoint).where(AuditCheckpoint.log_id == log_id,
                                                             AuditCheckpoint.size == head.size)).scalar()
    if existing is not None:
        return dict(existing.body)
    now = clock.now()
    body = _sign(log_id, head.size, head.root, now)
    session.add(AuditCheckpoint(log_id=log_id, size=head.size, root=head.root, signed_at=now, body=body))
    session.flush()
    _queue_anchor(session, body)
    return body


def heads_moved() -> ColumnElement[bool]:
    """A log's head is past its last checkpoint (the newest size read from the end of the
    (log_id, size) unique index: one index probe per log)."""
    signed = func.coalesce(select(func.max(AuditCheckpoint.size)).where(
        AuditCheckpoint.log_id == AuditLog.log_id).scalar_subquery(), -1)
    return AuditLog.size > signed


def checkpoint_all(session: Session) -> int:
    """Sign every log whose head moved since its last checkpoint (the sweep calls this each second).
    Busy heads are skipped (SKIP LOCKED) and signed on the next sweep."""
    append_pending(session)
    heads = session.execute(select(AuditLog).where(heads_moved()).with_for_update(skip_locked=True)).scalars().all()
    for head in heads:
        checkpoint(session, head.log_id)
    return len(heads)


def checkpoint_moved(session: Session, log_id: int) -> int:
    """Sign one log if its head moved and no other transaction holds it (SKIP LOCKED: a busy
    head is signed on the next sweep); 1 if signed."""
    head = session.execute(select(AuditLog.log_id).where(AuditLog.log_id == log_id, heads_moved())
                           .with_for_update(skip_locked=True)).scalar()
    return int(head is not None and checkpoint(session, log_id) is not None)


def latest_checkpoint(session: Session, log_id: int) -> dict[str, Any] | None:
    """The latest signed checkpoint of a log as a printable dict (for notices and packs)."""
    row = session.execute(select(AuditCheckpoint).where(AuditCheckpoint.log_id == log_id)
                          .order_by(AuditCheckpoint.size.desc()).limit(1)).scalar()
    return dict(row.body) if row is not None else None


def application_proofs(session: Session, app: Application, checkpoint_body: dict[str, Any]
                       ) -> tuple[list[AuditEvent], dict[int, list[str]], str]:
    """The application's events and an inclusion proof for each, against `checkpoint_body`."""
    append_pending(session)
    log_id, size = checkpoint_body["log_id"], checkpoint_body["size"]
    events = list(session.execute(select(AuditEvent).where(AuditEvent.application_id == app.id,
                                                           AuditEvent.log_id == log_id, AuditEvent.seq < size)
                                  .order_by(AuditEvent.app_seq)).scalars())
    leaves = (row for row in _stream(session, log_id, AuditEvent.leaf_hash))
    root, proofs = inclusion_proofs(leaves, size, [e.seq for e in events])
    return events, proofs, root


def _stream(session: Session, log_id: int, *columns: InstrumentedAttribute[Any]) -> Iterator[Any]:
    """A log's rows in seq order, in keyset batches (bounded memory at any size)."""
    after = -1
    while True:
        rows = session.execute(select(AuditEvent.seq, *columns).where(AuditEvent.log_id == log_id,
                                                                       AuditEvent.seq > after)
                               .order_by(AuditEvent.seq).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            yield row[1] if len(columns) == 1 else row
        after = rows[-1][0]


# -- verification ----------------------------------------------------------------------------------
def _anchor_checkpoints() -> Iterator[dict[str, Any]]:
    path = anchor_path()
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield json.loads(line)
            except ValueError:
                yield {"_bad_line": number}


def _signed_heads(session: Session, public_key: Ed25519PublicKey, problems: list[str]) -> dict[int, dict[int, str]]:
    """{log: {size: root}} of every checkpoint whose signature verifies (database and anchor file)."""
    heads: dict[int, dict[int, str]] = {}

    def add(body: dict[str, Any], where: str) -> None:
        if "_bad_line" in body:
            problems.append(f"锚定文件第{body['_bad_line']}行无法解析（文件被改动）")
        elif not checkpoint_signature_ok(body, public_key):
            problems.append(f"{where}中日志{body.get('log_id')}大小{body.get('size')}的检查点签名无效（被伪造或改动）")
        elif heads.setdefault(body["log_id"], {}).setdefault(body["size"], body["root"]) != body["root"]:
            problems.append(f"日志{body['log_id']}在大小{body['size']}处有两个不同的签名检查点（日志被分叉重写）")

    for row in session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars().yield_per(BATCH):
        add(dict(row.body), "数据库")
        if (row.body.get("log_id"), row.body.get("size"), row.body.get("root")) != (row.log_id, row.size, row.root):
            problems.append(f"数据库检查点记录{row.id}与其签名内容不符")
    for body in _anchor_checkpoints():
        add(body, "锚定文件")
    return heads


def verify(session: Session, public_key_pem: bytes | None = None, notes: list[str] | None = None) -> list[str]:
    """Every problem in the logs, in Chinese; an empty list means the trail is intact.

    Streams each log in seq order (keyset batches) with an O(log n) Merkle frontier, comparing the
    recomputed root with every signed checkpoint and with the log's head row. `notes` receives,
    per log, how many newest events no checkpoint covers yet (the window an attacker has)."""
    problems: list[str] = []
    try:
        public_key = keys.checkpoint_public_key(public_key_pem)
    except (keys.KeyProblem, ValueError) as exc:
        return [str(exc)]
    signed = _signed_heads(session, public_key, problems)
    log_ids = set(signed) | set(session.execute(select(AuditLog.log_id)).scalars()) | set(
        session.execute(select(AuditEvent.log_id).distinct()).scalars())
    for log_id in sorted(log_ids):
        problems += _verify_log(session, log_id, signed.get(log_id, {}), notes if notes is not None else [])
    return problems


def _verify_log(session: Session, log_id: int, signed: dict[int, str], notes: list[str]) -> list[str]:
    problems: list[str] = []
    frontier: list[list[Any]] = []
    app_seqs: dict[int, int] = {}
    size = 0
    columns = (AuditEvent.leaf_version, AuditEvent.log_id, AuditEvent.app_seq, AuditEvent.at, AuditEvent.unit_id,
               AuditEvent.application_id, AuditEvent.actor, AuditEvent.action, AuditEvent.step, AuditEvent.detail,
               AuditEvent.data_digest)
    for row in _stream(session, log_id, *columns):
        seq, v, _log, app_seq, at, unit_id, app_id, actor, action, step, detail, data_digest = row
        if seq != size:
            problems.append(f"日志{log_id}：第{size}至{seq - 1}条记录缺失")
            size = seq
        if app_id is not None:
            if app_seq != app_seqs.get(app_id, 0) + 1:
                problems.append(f"日志{log_id}第{seq}条：申请{app_id}的审计记录序号不连续（有记录被删除、插入或调换）")
            app_seqs[app_id] = app_seq or 0
        fields = {"v": v, "log_id": log_id, "seq": seq, "app_seq": app_seq, "at": clock.as_utc(at).isoformat(),
                  "unit_id": unit_id, "application_id": app_id, "actor": actor, "action": action, "step": step,
                  "detail": detail, "data_digest": data_digest}
        frontier_append(frontier, leaf_hash(fields))
        size += 1
        if size in signed and frontier_root(frontier) != signed[size]:
            problems.append(f"日志{log_id}：前{size}条记录与签名检查点不符（记录被修改、插入、删除或调换）")
    root = frontier_root(frontier)
    longest = max(signed, default=0)
    if longest > size:
        problems.append(f"日志{log_id}：签名检查点记录了{longest}条，数据库中只有{size}条（末尾记录被删除）")
    elif size > longest:
        notes.append(f"提示：日志{log_id}最新的{size - longest}条记录尚未被签名检查点覆盖（下一次定时任务将签名）")
    head = session.get(AuditLog, log_id)
    if head is None and size:
        problems.append(f"日志{log_id}的头记录缺失")
    elif head is not None and (head.size != size or head.root != root):
        problems.append(f"日志{log_id}的头记录与记录不符：头记录为{head.size}条，实有{size}条")
    return problems
