"""SQLAlchemy models: units, people, applications, workflow state, tasks, records, audit."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
    select,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    InstanceState,
    Mapped,
    Session,
    mapped_column,
    object_session,
    relationship,
    validates,
)
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.sql.schema import Table
from sqlalchemy.types import TypeDecorator

from . import clock, db
from .catalogue import (
    APPLICATION_KINDS,
    APPLICATION_STATUSES,
    CLOSED_STATUSES,
    GRANTABLE_ROLES,
    MIN_PUBLICITY_DAYS,
    KindCode,
    NoticeKind,
    ObjectionStatus,
    Process,
    RegistryState,
    StatusCode,
    checks_of,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else clock.as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else clock.as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# The catalogue defines them. A conversion period watch (kind "watch", status "watching",
# workflows/conversion/watch.py) is a process instance but no application: statistics count only these.
ROLES, KINDS, STATUSES = GRANTABLE_ROLES, APPLICATION_KINDS, APPLICATION_STATUSES
__all__ = ["CLOSED_STATUSES", "KINDS", "ROLES", "STATUSES"]


def _checks(table: str) -> tuple[CheckConstraint, ...]:
    """The table's CHECK constraints: its coded columns hold only what the catalogue lists."""
    return tuple(CheckConstraint(sql, name=name) for name, sql in checks_of(table))


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(500), default="")
    # False once the unit signs its staff in through its central identity service (统一身份认证).
    password_sign_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # §三(六)2 "可以不再给予": a team that took ownership or a use right gets no conversion reward
    # for the same achievement unless the unit allows it.
    reward_after_grant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # §三(六)3 names no term for the publicity of leaders' rewards: the unit sets it.
    leader_publicity_days: Mapped[int] = mapped_column(Integer, default=MIN_PUBLICITY_DAYS,
                                                       server_default=str(MIN_PUBLICITY_DAYS))
    # Days before the conversion period (转化期限) lapses when team and office are reminded.
    conversion_reminder_first_days: Mapped[int] = mapped_column(Integer, default=90, server_default="90")
    conversion_reminder_second_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Who objected is told to the office handling it; the unit decides whether its auditors see it.
    auditors_see_objectors: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    # Part of every session cookie; sign-out draws a new one, so a copied cookie dies with it.
    session_nonce: Mapped[str | None] = mapped_column(String(32))
    roles: Mapped[list[RoleGrant]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                  lazy="selectin")

    def has_role(self, role: str, unit_id: int | None = None) -> bool:
        """True if the user holds `role` in that unit (a grant with no unit spans all units)."""
        return any(g.role == role and (g.unit_id is None or unit_id is None or g.unit_id == unit_id)
                   for g in self.roles)

    def units_for(self, role: str) -> set[int | None]:
        return {g.unit_id for g in self.roles if g.role == role}


class RoleGrant(Base):
    """A role a user holds in a unit; unit_id NULL means every unit (a city-level auditor)."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "unit_id", "role"), *_checks("role_grants"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(String(16))
    user: Mapped[User] = relationship(back_populates="roles")
    unit: Mapped[Unit | None] = relationship(lazy="joined")


class ProcessVersion(Base):
    """A deployed BPMN version: the files' bytes and their content hash, and the serialized
    SpiffWorkflow spec every instance of it shares (stored once, not in each state)."""

    __tablename__ = "process_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    files: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    spec: Mapped[str | None] = mapped_column(Text, deferred=True)
    spec_sha256: Mapped[str | None] = mapped_column(String(64))
    deployed_at: Mapped[datetime] = mapped_column(default=clock.now)


class UnitCounter(Base):
    """Per unit and year, the last application number handed out."""

    __tablename__ = "unit_counters"
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (Index("ix_apps_unit_updated", "unit_id", "updated_at"),
                      Index("ix_apps_unit_created", "unit_id", "created_at"),
                      Index("ix_apps_updated", "updated_at"), Index("ix_apps_created", "created_at"),
                      Index("ix_apps_representative", "representative_id"), *_checks("applications"))
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    ip_numbers: Mapped[list[Any]] = mapped_column(default=list)
    representative_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    original_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unit: Mapped[Unit] = relationship(lazy="joined")
    representative: Mapped[User] = relationship(lazy="joined", foreign_keys=[representative_id])
    members: Mapped[list[ApplicationMember]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    state: Mapped[WorkflowState] = relationship(back_populates="application", uselist=False)

    def member_ids(self) -> set[int]:
        return {m.user_id for m in self.members} | {self.representative_id}


class ApplicationMember(Base):
    """Team members named in the draft; they may see the application."""

    __tablename__ = "application_members"
    __table_args__ = (Index("ix_members_user", "user_id"),)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class WorkflowState(Base):
    """The serialized SpiffWorkflow instance; `version` guards against lost updates."""

    __tablename__ = "workflow_states"
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    serialized: Mapped[str] = mapped_column(Text)
    timer_due_at: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(default=1)
    application: Mapped[Application] = relationship(back_populates="state")
    process_version: Mapped[ProcessVersion] = relationship()
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (declared by SQLAlchemy's base)


class HumanTask(Base):
    """Projection of ready/finished user tasks, written with the state, read by task lists."""

    __tablename__ = "human_tasks"
    # Each branch of a task list (mine; a role's unclaimed queue in a unit) is one equality
    # prefix of an index ordered by created_at; the reminder sweep reads only due rows.
    __table_args__ = (Index("ix_tasks_queue", "state", "unit_id", "role", "assignee_id", "created_at"),
                      Index("ix_tasks_assignee", "state", "assignee_id", "created_at"),
                      Index("ix_tasks_role_created", "state", "role", "created_at"),
                      Index("ix_tasks_remind", "state", "reminded_at", "created_at"),
                      # An application's ready steps (pages, lists' step column): both equalities in one
                      # index, else SQLite reads every ready task of the city through ix_tasks_remind.
                      Index("ix_tasks_application", "application_id", "state", "created_at"), *_checks("human_tasks"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    bpmn_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    form: Mapped[str] = mapped_column(String(100))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(16), default="ready")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Seconds from created_at to completed_at, written with completed_at (`_store_durations`):
    # the statistics sort these, not a julianday per row.
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    reminded_at: Mapped[datetime | None]
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    application: Mapped[Application] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")


class TaskDraft(Base):
    """Form data a person saved without submitting."""

    __tablename__ = "task_drafts"
    task_id: Mapped[str] = mapped_column(ForeignKey("human_tasks.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    data: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime] = mapped_column(default=clock.now)


class Document(Base):
    """Stored bytes with the SHA-256 taken when they were made; never rewritten."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = _checks("signatures")
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64))
    valid: Mapped[bool] = mapped_column(default=True)
    invalidated_at: Mapped[datetime | None]
    user: Mapped[User] = relationship(lazy="joined")


class PublicityNotice(Base):
    __tablename__ = "publicity_notices"
    # The board: the open notices only (partial), in the board's order (ends_at, id) with no sort,
    # and counted from the index alone (starts_at last; PostgreSQL does not take `closed_at IS NULL`
    # as fixing a leading column, so it sorted all open notices); the archive (closed, or term
    # over) newest end first by (ends_at, closed_at), from the index alone.
    __table_args__ = (Index("ix_notices_open", "ends_at", "id", "starts_at", "closed_at", postgresql_where=text("closed_at IS NULL"),
                            sqlite_where=text("closed_at IS NULL")),
                      Index("ix_notices_ends_closed", "ends_at", "closed_at"), *_checks("publicity_notices"))
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    round: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    last_day: Mapped[str] = mapped_column(String(10))
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    # Seconds from starts_at to closed_at, written with closed_at (`_store_durations`).
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    # What is publicized: a grant (§三(一)3/§三(二)1) or a price fixed by agreement (§三(五)1).
    kind: Mapped[str] = mapped_column(String(16), default=NoticeKind.GRANT, server_default=NoticeKind.GRANT.value)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    application: Mapped[Application] = relationship(lazy="joined")

    @validates("summary")
    def _posted_once(self, _key: str, summary: dict[str, Any]) -> dict[str, Any]:
        """What a notice posts is written once, when it goes up: the board keeps rendered entries
        by the notice's id (webapp public._article_key), and a posted notice is not rewritten."""
        if self.__dict__.get("summary"):
            raise ValueError(f"publicity notice {self.id}: its posted summary is not rewritten")
        return summary


class Objection(Base):
    __tablename__ = "objections"
    __table_args__ = _checks("objections")
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt: Mapped[str] = mapped_column(String(40), unique=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("publicity_notices.id"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    contact: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    client: Mapped[str] = mapped_column(String(64), default="")
    filed_at: Mapped[datetime] = mapped_column(default=clock.now)
    status: Mapped[str] = mapped_column(String(16), default=ObjectionStatus.OPEN)
    decision: Mapped[str | None] = mapped_column(String(20))
    reasoning: Mapped[str | None] = mapped_column(Text)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[datetime | None]


class RegistryEntry(Base):
    """The unit's achievement registry (职务科技成果库, §三(三)4): every service achievement,
    registered by the office or by a completed grant; `status` is its registry state
    (registered → granted → converting → converted / left), see workflows/reporting/registry.py."""

    __tablename__ = "registry_entries"
    __table_args__ = (Index("ix_registry_unit_status", "unit_id", "status"),
                      Index("ix_registry_unit_year", "unit_id", "registered_year"), *_checks("registry_entries"))
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    ip_type: Mapped[str] = mapped_column(String(32))
    ip_numbers: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    numbers_text: Mapped[str] = mapped_column(String(2000), default="")
    funding_source: Mapped[str] = mapped_column(String(32), default="")
    registered_on: Mapped[str] = mapped_column(String(10), default="")
    registered_year: Mapped[int] = mapped_column(Integer, default=0)
    grant_kind: Mapped[str | None] = mapped_column(String(16))
    granted_on: Mapped[str | None] = mapped_column(String(10))
    granted_year: Mapped[int | None] = mapped_column(Integer, index=True)
    left_on: Mapped[str | None] = mapped_column(String(10))
    left_year: Mapped[int | None] = mapped_column(Integer, index=True)
    left_mode: Mapped[str | None] = mapped_column(String(32))
    left_contract: Mapped[str | None] = mapped_column(String(200))
    venue_registered_on: Mapped[str | None] = mapped_column(String(10))
    fund_pushed_on: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unit: Mapped[Unit] = relationship(lazy="joined")
    inventors: Mapped[list[RegistryInventor]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                             order_by="RegistryInventor.position")


class AuditEvent(Base):
    """Append-only; leaf number `seq` of log `log_id` (the unit's log, 0 for system events).
    `leaf_hash` is recomputable from the other fields by anyone (workflows/evidence/pack_verify.py)."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("log_id", "seq"), Index("ix_audit_events_app_seq", "application_id", "app_seq"))
    id: Mapped[int] = mapped_column(primary_key=True)
    log_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    app_seq: Mapped[int | None] = mapped_column(Integer)
    leaf_version: Mapped[int] = mapped_column(Integer, default=2)
    at: Mapped[datetime]
    unit_id: Mapped[int | None] = mapped_column(index=True)
    application_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_digest: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[str] = mapped_column(String(64))


class AuditLog(Base):
    """One log's head: size, Merkle root and compact frontier. Locking it serializes appends
    to this log only, so two units never wait on each other."""

    __tablename__ = "audit_logs"
    log_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    root: Mapped[str] = mapped_column(String(64))
    frontier: Mapped[list[Any]] = mapped_column(default=list)


class AuditCheckpoint(Base):
    """A signed tree head (Ed25519, key in a file); also appended to the anchor file."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("log_id", "size"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    log_id: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    body: Mapped[dict[str, Any]]


class FormSubmission(Base):
    """Every submitted revision of every form, written with its audit event (same digest)."""

    __tablename__ = "form_submissions"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    step: Mapped[str] = mapped_column(String(64))
    form: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    payload_digest: Mapped[str] = mapped_column(String(64))
    audit_event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id"))
    user: Mapped[User] = relationship(lazy="joined")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    task_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(String(500))
    template: Mapped[str | None] = mapped_column(String(300))
    params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    read_at: Mapped[datetime | None]

    def text(self) -> str:
        """The notice as a translatable Message when it was stored with its template."""
        if not self.template:
            return self.message
        from .i18n import Message
        params = {k: Message(v["msgid"]) if isinstance(v, dict) and "msgid" in v else v
                  for k, v in (self.params or {}).items()}
        return Message(self.template, params)


class OutboxMail(Base):
    """Mail waits here until the SMTP server accepts it; an outage loses nothing."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # A sender claims a batch before sending (SKIP LOCKED on PostgreSQL), so two sweeps at
    # once deliver each mail once; the claim lapses if its sender dies.
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    # Only unsent rows are indexed: finding due mail never scans what was already sent.
    __table_args__ = (Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("sent_at IS NULL"),
                            sqlite_where=text("sent_at IS NULL")),)


class IncomeReceipt(Base):
    """Money received under a conversion's contract (§三(六)): Decimal yuan, two places."""

    __tablename__ = "income_receipts"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversion_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    received_on: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    evidence_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)


class IncomeDeduction(Base):
    """One evidenced line taken off income to reach net income (§三(六)2)."""

    __tablename__ = "income_deductions"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversion_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    incurred_on: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    evidence_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)


class Distribution(Base):
    """A plan dividing a period's net income: ≥ 70% to people, ≥ 3% to the office (§三(六)1)."""

    __tablename__ = "distributions"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversion_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    period_from: Mapped[str] = mapped_column(String(10))
    period_to: Mapped[str] = mapped_column(String(10))
    received: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    deducted: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    net_income: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    to_people: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    to_office: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    to_unit: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    # The distribution process (bpmn/distribution.bpmn) that publicizes, decides and pays this plan.
    process_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(default=clock.now)
    shares: Mapped[list[DistributionShare]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                           order_by="DistributionShare.id")


class DistributionShare(Base):
    """One person's reward in a plan; leaders' rewards are publicized before the decision (§三(六)3)."""

    __tablename__ = "distribution_shares"
    id: Mapped[int] = mapped_column(primary_key=True)
    distribution_id: Mapped[int] = mapped_column(ForeignKey("distributions.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    leader_post: Mapped[str] = mapped_column(String(16), default="none")
    mode: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    contribution: Mapped[str] = mapped_column(String(1000), default="")
    paid_on: Mapped[str | None] = mapped_column(String(10))
    payment_reference: Mapped[str | None] = mapped_column(String(100))


class RegistryInventor(Base):
    """An inventor of a registry entry, as an account: they see the entry as their own."""

    __tablename__ = "registry_inventors"
    entry_id: Mapped[int] = mapped_column(ForeignKey("registry_entries.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(default=0)
    user: Mapped[User] = relationship(lazy="joined")


class RegistryHistory(Base):
    """Who changed a registry entry, when, and what (field: [before, after])."""

    __tablename__ = "registry_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("registry_entries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=clock.now)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)


# Indexes for the statistics (workflows/reporting/statistics.py): per unit, step and year, answered from
# the index alone, so the dashboard stays fast at a city's scale.
# The durations last: median and p90 are sorted from the index alone.
Index("ix_tasks_durations", HumanTask.unit_id, HumanTask.bpmn_id, HumanTask.completed_at, HumanTask.duration_seconds)
Index("ix_applications_unit_created", Application.unit_id, Application.created_at, Application.status,
      Application.kind)
Index("ix_applications_unit_closed", Application.unit_id, Application.status, Application.closed_at, Application.kind)
Index("ix_notices_unit_closed", PublicityNotice.unit_id, PublicityNotice.closed_at, PublicityNotice.starts_at)
Index("ix_notices_durations", PublicityNotice.unit_id, PublicityNotice.closed_at, PublicityNotice.duration_seconds)
# Who may claim a queued task (the application page): a role's holders in a unit or city-wide.
Index("ix_role_grants_role_unit", RoleGrant.role, RoleGrant.unit_id)
# A grant's conversions and its conversion-period watch (the application page, watch.watch_of).
Index("ix_applications_original", Application.original_id, Application.kind)


def seconds_between(begin: datetime | None, end: datetime | None) -> float | None:
    """end − begin in seconds (microseconds kept), both read as UTC; None if either is missing."""
    if begin is None or end is None:
        return None
    return (clock.as_utc(end) - clock.as_utc(begin)).total_seconds()


class DurationBin(Base):
    """How many tasks of a step (or notices) finished in a Shanghai year with a duration of exactly
    `centidays` hundredths of a day: the statistics' median and p90 are read from these counts
    instead of sorting every stored duration. The bins are the resolution the page shows (days
    rounded to 0.01, and rounding is monotonic), so the nearest-rank values are identical.
    Every unit's rows are repeated under scope 0, the city, so the city reads one scope too.
    Kept in the transaction that writes the durations (`_store_durations`, `write_pending_bins`);
    Core writers call `rebuild_duration_bins`; `grants check-statistics` compares with the rows."""

    __tablename__ = "duration_bins"
    scope_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # a unit's id, CITY_SCOPE
    step: Mapped[str] = mapped_column(String(64), primary_key=True)  # bpmn_id; Process.PUBLICITY: notices
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    centidays: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(default=0)


class ApplicationCount(Base):
    """How many applications of a unit (scope 0: the city) have a status and kind, by the Shanghai
    year they were started in (basis STARTED, period = year) or the month they were closed in
    (basis CLOSED, period = year * 100 + month): the statistics' applications by status and kind,
    grants by kind and by month, without reading ~33,000 applications a year city-wide. Kept by
    `_count_application` in the transaction that writes the application, like the duration bins."""

    __tablename__ = "application_counts"
    scope_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    basis: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    period: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


STARTED, CLOSED = 0, 1
_APP_FIELDS = ("unit_id", "created_at", "closed_at", "status", "kind")
AppKey = tuple[int, int, int, str, str]


def application_keys(unit_id: int | None, created_at: datetime | None, closed_at: datetime | None,
                     status: str | None, kind: str | None) -> list[AppKey]:
    """The rows of `application_counts` one application counts in."""
    if unit_id is None or status is None or kind is None:
        return []
    keys: list[AppKey] = []
    if created_at is not None:
        keys.append((unit_id, STARTED, clock.local_date(created_at).year, status, kind))
    if closed_at is not None:
        day = clock.local_date(closed_at)
        keys.append((unit_id, CLOSED, day.year * 100 + day.month, status, kind))
    return keys


def _application_values(connection: Any, target: Application) -> dict[str, Any]:
    state: InstanceState[Any] = inspect(target)
    values = {name: state.committed_state[name] if name in state.committed_state else state.dict.get(name, NO_VALUE)
              for name in _APP_FIELDS}
    if any(v is NO_VALUE for v in values.values()):
        table = cast("Table", Application.__table__)
        row = connection.execute(select(*(table.c[n] for n in _APP_FIELDS)).where(table.c.id == target.id)).one()
        values = dict(zip(_APP_FIELDS, row, strict=True))
    return values


def _queue_application(target: Application, keys: list[AppKey], delta: int) -> None:
    session = object_session(target)
    if session is not None:
        for key in keys:
            _queue(session, ApplicationCount.__tablename__, key, delta)


@event.listens_for(Application, "before_update")
def _recount_application(_mapper: Any, connection: Any, target: Application) -> None:
    """A status, kind or closing change moves the application between its counts."""
    before = application_keys(**_application_values(connection, target))
    after = application_keys(**{name: getattr(target, name) for name in _APP_FIELDS})
    if before != after:
        _queue_application(target, before, -1)
        _queue_application(target, after, 1)


@event.listens_for(Application, "after_insert")
def _count_application(_mapper: Any, _connection: Any, target: Application) -> None:
    """After the insert: created_at's default is filled in by then."""
    _queue_application(target, application_keys(**{name: getattr(target, name) for name in _APP_FIELDS}), 1)


@event.listens_for(Application, "after_delete")
def _uncount_application(_mapper: Any, _connection: Any, target: Application) -> None:
    state: InstanceState[Any] = inspect(target)
    values = {name: state.committed_state.get(name, getattr(target, name)) for name in _APP_FIELDS}
    _queue_application(target, application_keys(**values), -1)


def count_applications(connection: Any) -> Counter[AppKey]:
    """`application_counts` recomputed from the applications."""
    table = cast("Table", Application.__table__)
    counts: Counter[AppKey] = Counter()
    for row in connection.execute(select(*(table.c[n] for n in _APP_FIELDS))):
        for key in application_keys(*row):
            counts[key] += 1
            counts[(CITY_SCOPE, *key[1:])] += 1
    return counts


def stored_application_counts(connection: Any) -> Counter[AppKey]:
    table = cast("Table", ApplicationCount.__table__)
    return Counter({tuple(r[:5]): r[5] for r in connection.execute(select(
        table.c.scope_id, table.c.basis, table.c.period, table.c.status, table.c.kind, table.c.n)) if r[5]})


CITY_SCOPE = 0
BinKey = tuple[int, str, int, int]
_BIN_DELTAS = "duration_bin_deltas"


def centidays(seconds: float) -> int:
    """Hundredths of a day exactly as the statistics show them: round(seconds / 86400, 2)."""
    return round(round(float(seconds) / 86400, 2) * 100)


def bin_key(unit_id: int | None, step: str | None, end: datetime | None, seconds: float | None) -> BinKey | None:
    """The bin of one finished task or closed notice; None while it is not finished."""
    if end is None or seconds is None or unit_id is None or step is None:
        return None
    return unit_id, step, clock.local_date(end).year, centidays(seconds)


def _key_of(target: HumanTask | PublicityNotice, values: dict[str, Any]) -> BinKey | None:
    if isinstance(target, HumanTask):
        return bin_key(values["unit_id"], values["bpmn_id"], values["completed_at"], values["duration_seconds"])
    return bin_key(values["unit_id"], Process.PUBLICITY, values["closed_at"], values["duration_seconds"])


def _fields(target: HumanTask | PublicityNotice) -> tuple[str, ...]:
    if isinstance(target, HumanTask):
        return "unit_id", "bpmn_id", "completed_at", "duration_seconds"
    return "unit_id", "closed_at", "duration_seconds"


def _stored_key(connection: Any, target: HumanTask | PublicityNotice) -> BinKey | None:
    """The bin the row is counted in now (before this flush writes it): its loaded values, or
    the database's if one of them was never loaded."""
    state: InstanceState[Any] = inspect(target)
    values: dict[str, Any] = {}
    for name in _fields(target):
        value = state.committed_state.get(name, NO_VALUE) if name in state.committed_state else \
            state.dict.get(name, NO_VALUE)
        values[name] = value
    if any(v is NO_VALUE for v in values.values()):
        table = type(target).__table__
        row = connection.execute(select(*(table.c[n] for n in _fields(target))).where(
            table.c.id == target.id)).one()
        values = dict(zip(_fields(target), row, strict=True))
    return _key_of(target, values)


def _bump(target: HumanTask | PublicityNotice, key: BinKey | None, delta: int) -> None:
    session = object_session(target)
    if key is None or session is None:
        return
    _queue(session, DurationBin.__tablename__, key, delta)


def _queue(session: Session, table: str, key: tuple[Any, ...], delta: int) -> None:
    """Queue delta for the unit's row of a summary table and for the city's (scope 0)."""
    deltas: Counter[tuple[Any, ...]] = session.info.setdefault(_BIN_DELTAS, Counter())
    deltas[(table, *key)] += delta
    deltas[(table, CITY_SCOPE, *key[1:])] += delta


@event.listens_for(HumanTask, "before_insert")
@event.listens_for(HumanTask, "before_update")
@event.listens_for(PublicityNotice, "before_insert")
@event.listens_for(PublicityNotice, "before_update")
def _store_durations(_mapper: Any, connection: Any, target: HumanTask | PublicityNotice) -> None:
    """Every ORM write of a finished task or a closed notice stores its duration in the same
    flush, so in the transaction that completes it (engine.complete_task, the publicity close,
    the objection handling, and any test or seeder writing rows through the ORM), and moves it
    between the statistics' duration bins. Core inserts (bench/seed.py, bench/bench_statistics.py)
    write the column themselves and rebuild the bins (`rebuild_duration_bins`)."""
    state: InstanceState[Any] = inspect(target)
    before = _stored_key(connection, target) if state.has_identity else None
    if isinstance(target, HumanTask):
        target.duration_seconds = seconds_between(target.created_at, target.completed_at)
    else:
        target.duration_seconds = seconds_between(target.starts_at, target.closed_at)
    after = _key_of(target, {name: getattr(target, name) for name in _fields(target)})
    if before != after:
        _bump(target, before, -1)
        _bump(target, after, 1)


@event.listens_for(HumanTask, "after_delete")
@event.listens_for(PublicityNotice, "after_delete")
def _forget_duration(_mapper: Any, connection: Any, target: HumanTask | PublicityNotice) -> None:
    """A deleted finished row leaves its bin (nothing deletes them today; kept exact if one does)."""
    state: InstanceState[Any] = inspect(target)
    values = {name: state.committed_state.get(name, getattr(target, name)) for name in _fields(target)}
    _bump(target, _key_of(target, values), -1)


# The bins a transaction moves are written last, just before it commits (as the audit appends its
# events, workflows/evidence/audit.py): a bin row, the city's above all, is locked from its upsert
# to the commit, so the lock is held for the commit alone. A savepoint rolled back restores the
# deltas queued before it (the sweep fires each instance in one); a rollback drops them all.
_BIN_MARKS = "duration_bin_marks"


def write_pending_bins(session: Session) -> None:
    """Flush, then add the transaction's deltas to their bins in one statement (sorted, so two
    transactions lock shared bins in the same order)."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    deltas: Counter[tuple[Any, ...]] | None = session.info.pop(_BIN_DELTAS, None)
    for table in (ApplicationCount, DurationBin):
        changed = {k[1:]: d for k, d in (deltas or {}).items() if d and k[0] == table.__tablename__}
        if changed:
            add_to_bins(session.connection(), changed, cast("Table", table.__table__))


@event.listens_for(Session, "before_commit")
def _bins_before_commit(session: Session) -> None:
    """A commit that bypasses workflows.db.WorkSession.commit (its hook) still writes the bins."""
    if session.info.get(_BIN_DELTAS) and session.get_nested_transaction() is None:
        write_pending_bins(session)


@event.listens_for(Session, "after_transaction_create")
def _bins_mark(session: Session, transaction: Any) -> None:
    if transaction.nested:
        session.info.setdefault(_BIN_MARKS, {})[transaction] = Counter(session.info.get(_BIN_DELTAS, ()))


@event.listens_for(Session, "after_soft_rollback")
def _bins_rolled_back(session: Session, previous: Any) -> None:
    if previous.nested:
        mark = session.info.get(_BIN_MARKS, {}).pop(previous, None)
        if mark is not None:
            session.info[_BIN_DELTAS] = mark
    elif previous.parent is None:
        session.info.pop(_BIN_DELTAS, None)


@event.listens_for(Session, "after_transaction_end")
def _bins_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_BIN_DELTAS, None)
        session.info.pop(_BIN_MARKS, None)


db.before_commit_hooks.append(write_pending_bins)


_UPSERTS: dict[tuple[str, str], Any] = {}


def _dialect_insert(dialect: str) -> Any:
    """The INSERT with ON CONFLICT of the database at hand (PostgreSQL's or SQLite's)."""
    from sqlalchemy.dialects import postgresql, sqlite
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _upsert(dialect: str, table: Table) -> Any:
    """The summary table's `INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`, built once per
    dialect with bound parameters: building it with the rows as literal VALUES (a new statement,
    compiled anew, every commit) was ~10 % of a write's server time."""
    found = _UPSERTS.get((dialect, table.name))
    if found is None:
        stmt = _dialect_insert(dialect)(table)
        found = stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns),
                                           set_={"n": table.c.n + stmt.excluded.n})
        _UPSERTS[(dialect, table.name)] = found
    return found


def add_to_bins(connection: Any, deltas: dict[tuple[Any, ...], int], table: Table | None = None) -> None:
    """Upsert n += delta for each row of a summary table (keys in primary-key order; default the
    duration bins), on SQLite and PostgreSQL (ON CONFLICT on both): one statement, executed for
    the rows in key order (two transactions lock shared rows in the same order)."""
    table = table if table is not None else cast("Table", DurationBin.__table__)
    names = [c.name for c in table.primary_key.columns]
    rows = [{**dict(zip(names, key, strict=True)), "n": d} for key, d in sorted(deltas.items())]
    if rows:
        connection.execute(_upsert(connection.dialect.name, table), rows)


def count_duration_bins(connection: Any) -> Counter[BinKey]:
    """The bins recomputed from the rows (stored durations), as the statistics would count them."""
    tasks, notices = HumanTask.__table__, PublicityNotice.__table__
    counts: Counter[BinKey] = Counter()
    for unit_id, step, end, seconds in connection.execute(select(
            tasks.c.unit_id, tasks.c.bpmn_id, tasks.c.completed_at, tasks.c.duration_seconds).where(
            tasks.c.completed_at.is_not(None))):
        _count(counts, bin_key(unit_id, step, end, seconds))
    for unit_id, end, seconds in connection.execute(select(
            notices.c.unit_id, notices.c.closed_at, notices.c.duration_seconds).where(notices.c.closed_at.is_not(None))):
        _count(counts, bin_key(unit_id, Process.PUBLICITY, end, seconds))
    return counts


def _count(counts: Counter[BinKey], key: BinKey | None) -> None:
    if key is not None:
        counts[key] += 1
        counts[(CITY_SCOPE, *key[1:])] += 1


def stored_duration_bins(connection: Any) -> Counter[BinKey]:
    table = DurationBin.__table__
    return Counter({(s, st, y, c): n for s, st, y, c, n in connection.execute(select(
        table.c.scope_id, table.c.step, table.c.year, table.c.centidays, table.c.n)) if n})


def rebuild_duration_bins(connection: Any) -> None:
    """Recount every bin and application count from the rows (Core writers: bench/seed.py,
    bench/bench_statistics.py; `grants check-statistics --rebuild`)."""
    connection.execute(cast("Table", DurationBin.__table__).delete())
    connection.execute(cast("Table", ApplicationCount.__table__).delete())
    counts = count_duration_bins(connection)
    if counts:
        add_to_bins(connection, dict(counts))
    apps = count_applications(connection)
    if apps:
        add_to_bins(connection, dict(apps), cast("Table", ApplicationCount.__table__))


# --- 同一成果不重复激励 (§三(一)3): the live claims on IP numbers --------------------------

class IpClaim(Base):
    """An IP number of a unit claimed by an open grant application (`registry_entry_id` NULL: not
    an extension, not refused or withdrawn) or by a registry entry that is linked to an application
    and past 在库 (`registry_entry_id` set, `application_id` the entry's application). Exactly the
    rule the draft check applied to every open application's numbers; it now reads these rows for
    the draft's own numbers only (`claimed_numbers`). A row exists while its claim is live and is
    deleted when released, so the partial unique index on application claims lets the database
    refuse the second of two drafts naming the same number at once (`claim_numbers`). Kept in the
    transaction that writes the application or the entry (`_reclaim_application`, `_reclaim_entry`);
    Core writers call `rebuild_ip_claims`; `grants check-statistics` compares with the rows."""

    __tablename__ = "ip_claims"
    __table_args__ = (Index("ix_ip_claims_number", "unit_id", "ip_number"),
                      Index("uq_ip_claims_application", "unit_id", "ip_number", unique=True,
                            sqlite_where=text("registry_entry_id IS NULL"),
                            postgresql_where=text("registry_entry_id IS NULL")))
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    ip_number: Mapped[str] = mapped_column(String(200))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    registry_entry_id: Mapped[int | None] = mapped_column(ForeignKey("registry_entries.id"), index=True)


RELEASING_STATUSES = (StatusCode.REFUSED, StatusCode.WITHDRAWN)
_APP_CLAIM_FIELDS = ("unit_id", "kind", "status", "ip_numbers")
_ENTRY_CLAIM_FIELDS = ("unit_id", "status", "application_id", "ip_numbers")
_CLAIMS_WRITTEN = "ip_claims_written"
ClaimRow = tuple[int, str, int, int | None]  # unit_id, ip_number, application_id, registry_entry_id


def application_claims(kind: str | None, status: str | None, ip_numbers: Any) -> frozenset[str]:
    """The numbers an application claims: all of them unless it extends a grant or was refused or withdrawn."""
    if kind == KindCode.EXTENSION or status in RELEASING_STATUSES:
        return frozenset()
    return frozenset(str(n) for n in ip_numbers or ())


def entry_claims(status: str | None, application_id: int | None, ip_numbers: Any) -> frozenset[str]:
    """The numbers a registry entry claims: linked to an application (the old check compared
    `application_id != app.id`, false for NULL) and no longer 在库."""
    if application_id is None or status == RegistryState.REGISTERED:
        return frozenset()
    return frozenset(str(n) for n in ip_numbers or ())


def claimed_numbers(session: Session, unit_id: int, application_id: int,
                    numbers: list[str] | None = None) -> set[str]:
    """Numbers of the unit (of `numbers` only, if given) claimed by anyone but the application
    itself and its own registry entry: one indexed statement, whatever the unit's size."""
    if numbers is not None and not numbers:
        return set()
    query = select(IpClaim.ip_number).where(IpClaim.unit_id == unit_id, IpClaim.application_id != application_id)
    if numbers is not None:
        query = query.where(IpClaim.ip_number.in_(sorted(set(numbers))))
    return set(session.execute(query).scalars())


def claim_numbers(session: Session, app: Application, numbers: list[str]) -> list[str]:
    """Claim the draft's numbers for the application before it stores them; the numbers another
    application holds already (its claim committed, or committed meanwhile by a concurrent draft:
    the insert waits for it) are returned and nothing is changed. ON CONFLICT DO NOTHING, not a
    failing insert, so the transaction stays usable on PostgreSQL."""
    old = application_claims(app.kind, app.status, app.ip_numbers)
    new = application_claims(app.kind, app.status, numbers)
    table = cast("Table", IpClaim.__table__)
    connection = session.connection()
    added = sorted(new - old)
    if added:
        insert = _dialect_insert(connection.dialect.name)(table).values(
            [{"unit_id": app.unit_id, "ip_number": n, "application_id": app.id, "registry_entry_id": None}
             for n in added])
        inserted: set[str] = set(connection.execute(insert.on_conflict_do_nothing(
            index_elements=["unit_id", "ip_number"], index_where=table.c.registry_entry_id.is_(None))
            .returning(table.c.ip_number)).scalars())
        taken = sorted(set(added) - inserted)
        if taken:
            if inserted:
                connection.execute(table.delete().where(table.c.application_id == app.id,
                                                        table.c.registry_entry_id.is_(None),
                                                        table.c.ip_number.in_(sorted(inserted))))
            return taken
    removed = sorted(old - new)
    if removed:
        connection.execute(table.delete().where(table.c.application_id == app.id, table.c.registry_entry_id.is_(None),
                                                table.c.ip_number.in_(removed)))
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_CLAIMS_WRITTEN, {})[app.id] = (transaction, new)
    return []


def _stored_values(connection: Any, target: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The row's values before this flush writes it: the loaded ones, or the database's if one was never loaded."""
    state: InstanceState[Any] = inspect(target)
    values = {name: state.committed_state[name] if name in state.committed_state else state.dict.get(name, NO_VALUE)
              for name in fields}
    if any(v is NO_VALUE for v in values.values()):
        table = type(target).__table__
        row = connection.execute(select(*(table.c[n] for n in fields)).where(table.c.id == target.id)).one()
        values = dict(zip(fields, row, strict=True))
    return values


def _write_claims(connection: Any, unit_id: int | None, application_id: int | None, entry_id: int | None,
                  numbers: frozenset[str]) -> None:
    if numbers and unit_id is not None and application_id is not None:
        connection.execute(cast("Table", IpClaim.__table__).insert(), [
            {"unit_id": unit_id, "ip_number": n, "application_id": application_id, "registry_entry_id": entry_id}
            for n in sorted(numbers)])


@event.listens_for(Application, "after_insert")
def _claim_application(_mapper: Any, connection: Any, target: Application) -> None:
    _write_claims(connection, target.unit_id, target.id, None,
                  application_claims(target.kind, target.status, target.ip_numbers))


@event.listens_for(Application, "before_update")
def _reclaim_application(_mapper: Any, connection: Any, target: Application) -> None:
    """A refusal or withdrawal releases the application's numbers; a number change by any other
    writer than the draft check (which claimed them itself, `claim_numbers`) moves them."""
    state: InstanceState[Any] = inspect(target)
    if not any(name in state.committed_state for name in _APP_CLAIM_FIELDS):
        return
    session = object_session(target)
    written = session.info.get(_CLAIMS_WRITTEN, {}) if session is not None else {}
    if target.id not in written and not any(name in state.committed_state for name in ("unit_id", "kind", "ip_numbers")):
        old_status = state.committed_state.get("status", NO_VALUE)
        if old_status is not NO_VALUE and (old_status in RELEASING_STATUSES) == (target.status in RELEASING_STATUSES):
            return  # a step within the open (or the closed) statuses: nothing read, nothing written
    if target.id in written:
        before, unit_before = written.pop(target.id)[1], target.unit_id
    else:
        values = _stored_values(connection, target, _APP_CLAIM_FIELDS)
        before, unit_before = application_claims(values["kind"], values["status"], values["ip_numbers"]), \
            values["unit_id"]
    after = application_claims(target.kind, target.status, target.ip_numbers)
    table = cast("Table", IpClaim.__table__)
    if unit_before != target.unit_id:  # every row moves (nothing moves applications today)
        gone, new = before, after
    else:
        gone, new = before - after, after - before
    if gone:
        connection.execute(table.delete().where(table.c.application_id == target.id, table.c.registry_entry_id.is_(None),
                                                table.c.ip_number.in_(sorted(gone))))
    _write_claims(connection, target.unit_id, target.id, None, new)


@event.listens_for(Application, "before_delete")
def _unclaim_application(_mapper: Any, connection: Any, target: Application) -> None:
    table = cast("Table", IpClaim.__table__)
    connection.execute(table.delete().where(table.c.application_id == target.id, table.c.registry_entry_id.is_(None)))


@event.listens_for(RegistryEntry, "after_insert")
def _claim_entry(_mapper: Any, connection: Any, target: RegistryEntry) -> None:
    _write_claims(connection, target.unit_id, target.application_id, target.id,
                  entry_claims(target.status, target.application_id, target.ip_numbers))


@event.listens_for(RegistryEntry, "before_update")
def _reclaim_entry(_mapper: Any, connection: Any, target: RegistryEntry) -> None:
    """An entry claims its numbers once linked to an application and past 在库 (a completed grant,
    a conversion), and releases them when it returns to 在库 (a lapsed grant)."""
    state: InstanceState[Any] = inspect(target)
    if not any(name in state.committed_state for name in _ENTRY_CLAIM_FIELDS):
        return
    values = _stored_values(connection, target, _ENTRY_CLAIM_FIELDS)
    before = (values["unit_id"], values["application_id"],
              entry_claims(values["status"], values["application_id"], values["ip_numbers"]))
    after = (target.unit_id, target.application_id,
             entry_claims(target.status, target.application_id, target.ip_numbers))
    if before == after:
        return
    if before[2]:
        table = cast("Table", IpClaim.__table__)
        connection.execute(table.delete().where(table.c.registry_entry_id == target.id))
    _write_claims(connection, *after[:2], target.id, after[2])


@event.listens_for(RegistryEntry, "before_delete")
def _unclaim_entry(_mapper: Any, connection: Any, target: RegistryEntry) -> None:
    table = cast("Table", IpClaim.__table__)
    connection.execute(table.delete().where(table.c.registry_entry_id == target.id))


@event.listens_for(Session, "after_transaction_end")
def _claims_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CLAIMS_WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _claims_rolled_back(session: Session, previous: Any) -> None:
    """Claims written inside a rolled-back savepoint are gone with it (and the new numbers expired)."""
    written: dict[int, tuple[Any, frozenset[str]]] = session.info.get(_CLAIMS_WRITTEN) or {}
    for app_id, (claimed_in, _numbers) in list(written.items()):
        transaction = claimed_in
        while transaction is not None and transaction is not previous:
            transaction = transaction.parent
        if transaction is previous:
            del written[app_id]


def count_ip_claims(connection: Any) -> tuple[Counter[ClaimRow], list[ClaimRow]]:
    """The claims recomputed from the rows, and the application claims left out because an older
    application (lower id) of the unit claims the same number (only a race before the claims
    table, or a direct write, lets two through)."""
    apps, entries = cast("Table", Application.__table__), cast("Table", RegistryEntry.__table__)
    rows: Counter[ClaimRow] = Counter()
    skipped: list[ClaimRow] = []
    held: set[tuple[int, str]] = set()
    for app_id, unit_id, kind, status, numbers in connection.execute(select(
            apps.c.id, apps.c.unit_id, apps.c.kind, apps.c.status, apps.c.ip_numbers).order_by(apps.c.id)):
        for number in sorted(application_claims(kind, status, numbers)):
            if (unit_id, number) in held:
                skipped.append((unit_id, number, app_id, None))
            else:
                held.add((unit_id, number))
                rows[(unit_id, number, app_id, None)] += 1
    for entry_id, unit_id, status, app_id, numbers in connection.execute(select(
            entries.c.id, entries.c.unit_id, entries.c.status, entries.c.application_id, entries.c.ip_numbers)):
        for number in entry_claims(status, app_id, numbers):
            rows[(unit_id, number, app_id, entry_id)] += 1
    return rows, skipped


def stored_ip_claims(connection: Any) -> Counter[ClaimRow]:
    table = cast("Table", IpClaim.__table__)
    return Counter((u, n, a, e) for u, n, a, e in connection.execute(select(
        table.c.unit_id, table.c.ip_number, table.c.application_id, table.c.registry_entry_id)))


def ip_claim_differences(connection: Any) -> list[tuple[ClaimRow, int, int]]:
    """(row, stored, counted) for each claim the table holds a different number of times than the rows say."""
    counted, _skipped = count_ip_claims(connection)
    stored = stored_ip_claims(connection)
    return sorted(((key, stored[key], counted[key]) for key in set(stored) | set(counted) if stored[key] != counted[key]),
                  key=lambda d: (d[0][0], d[0][1], d[0][2], d[0][3] or 0))


def rebuild_ip_claims(connection: Any) -> list[ClaimRow]:
    """Rewrite the claims from the rows (Core writers: bench/seed.py; `grants check-statistics
    --rebuild`); returns the application claims left out as duplicates (see `count_ip_claims`)."""
    table = cast("Table", IpClaim.__table__)
    connection.execute(table.delete())
    rows, skipped = count_ip_claims(connection)
    values = [{"unit_id": u, "ip_number": n, "application_id": a, "registry_entry_id": e} for u, n, a, e in sorted(
        rows, key=lambda r: (r[0], r[1], r[2], r[3] or 0))]
    for first in range(0, len(values), 1000):
        connection.execute(table.insert(), values[first:first + 1000])
    return skipped


# --- hardening: sweep incidents, login throttling, outbox claims -------------------------

class Incident(Base):
    """A timer step that kept failing, as Camunda's incidents: shown to administrators with the
    error, retried with back-off, and never holding up the other instances."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="timer")
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    next_retry_at: Mapped[datetime] = mapped_column(default=clock.now)
    resolved_at: Mapped[datetime | None]
    application: Mapped[Application] = relationship(lazy="joined")
    __table_args__ = (Index("ix_incidents_open", "application_id", "resolved_at"),)


class LoginThrottle(Base):
    """Failed sign-ins per (username, client address) and per username, keyed by a digest so
    no address is stored; a row is a counter updated atomically, never read-modify-written."""

    __tablename__ = "login_throttles"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    lockouts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)

