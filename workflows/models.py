"""SQLAlchemy models: units, people, applications, workflow state, tasks, records, audit."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from . import clock


class UTCDateTime(TypeDecorator):
    """Stores UTC, always hands back aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else clock.as_utc(value)

    def process_result_value(self, value, dialect):
        return None if value is None else clock.as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


ROLES = ("researcher", "tto", "decider", "signer", "auditor", "admin")
KINDS = ("ownership", "use_right", "extension")
STATUSES = ("draft", "consenting", "in_review", "deciding", "publicity", "agreement", "signing", "ip_transfer",
            "completed", "refused", "withdrawn")
CLOSED_STATUSES = ("completed", "refused", "withdrawn")


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(500), default="")


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
    __table_args__ = (UniqueConstraint("user_id", "unit_id", "role"),)
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
                      Index("ix_apps_representative", "representative_id"))
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
    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """Projection of ready/finished user tasks, written with the state, read by task lists."""

    __tablename__ = "human_tasks"
    __table_args__ = (Index("ix_tasks_queue", "state", "unit_id", "role", "created_at"),
                      Index("ix_tasks_assignee", "state", "assignee_id", "created_at"),
                      Index("ix_tasks_role_created", "state", "role", "created_at"))
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
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
    __table_args__ = (Index("ix_notices_open", "closed_at", "ends_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    round: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    last_day: Mapped[str] = mapped_column(String(10))
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    application: Mapped[Application] = relationship(lazy="joined")


class Objection(Base):
    __tablename__ = "objections"
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
    status: Mapped[str] = mapped_column(String(16), default="open")
    decision: Mapped[str | None] = mapped_column(String(20))
    reasoning: Mapped[str | None] = mapped_column(Text)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[datetime | None]


class RegistryEntry(Base):
    """The unit's achievement registry (职务科技成果库, §三(三)4)."""

    __tablename__ = "registry_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    ip_type: Mapped[str] = mapped_column(String(32))
    ip_numbers: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(32))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class AuditEvent(Base):
    """Append-only, hash-chained: each row's hash covers the previous row's hash."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    unit_id: Mapped[int | None] = mapped_column(index=True)
    application_id: Mapped[int | None] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link; locking it serializes appends, and it exposes a deleted tail."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


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
