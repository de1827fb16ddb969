"""The audit trail becomes one RFC 6962 Merkle log per unit with signed checkpoints; submitted
forms are kept revision by revision.

Existing rows keep their content and order (by id): each gets its unit's log (0 without a unit),
its place in it, its number within its application and a leaf hash anyone can recompute
(leaf_version 1: recorded before form revisions were kept). The HMAC chain columns and the global
head row go. Checkpoints are signed by the first sweep after the upgrade (the key is in a file).

Revision ID: 0003_audit
Revises: 0003_sso
"""
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

import workflows.models
from workflows.evidence.pack_verify import EMPTY_ROOT, frontier_append, frontier_root, leaf_hash

revision = "0003_audit"
down_revision = "0003_sso"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_logs",
        sa.Column("log_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("log_id"))
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("signed_at", workflows.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("log_id", "size"))
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("app_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("leaf_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("leaf_hash", sa.String(length=64), nullable=True))
    _convert_rows()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for column in ("log_id", "seq", "leaf_version", "leaf_hash"):
            batch_op.alter_column(column, existing_type=sa.String(64) if column == "leaf_hash" else sa.Integer(),
                                  nullable=False)
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("hash")
        batch_op.drop_index("ix_audit_events_application_id")
        batch_op.create_index("ix_audit_events_app_seq", ["application_id", "app_seq"], unique=False)
        batch_op.create_unique_constraint("uq_audit_events_log_id_seq", ["log_id", "seq"])
    op.drop_table("audit_head")
    op.create_table(
        "form_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("form", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", workflows.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("audit_event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["audit_event_id"], ["audit_events.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"))
    with op.batch_alter_table("form_submissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_form_submissions_application_id"), ["application_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # ids used to be set by hand: move the sequence past them
        op.execute("SELECT setval(pg_get_serial_sequence('audit_events', 'id'), "
                   "GREATEST((SELECT max(id) FROM audit_events), 1))")


def _convert_rows() -> None:
    """Give every existing event its log, place and leaf hash; build each log's head."""
    conn = op.get_bind()
    typed = {"at": workflows.models.UTCDateTime(timezone=True), "detail": sa.JSON()}
    events = sa.table("audit_events", *(sa.column(c, typed.get(c)) for c in (
        "id", "at", "unit_id", "application_id", "actor", "action", "step", "detail", "data_digest",
        "log_id", "seq", "app_seq", "leaf_version", "leaf_hash")))
    logs: dict[int, list] = {}
    app_seqs: dict[int, int] = {}
    rows = conn.execute(sa.select(events.c.id, events.c.at, events.c.unit_id, events.c.application_id,
                                  events.c.actor, events.c.action, events.c.step, events.c.detail,
                                  events.c.data_digest).order_by(events.c.id)).all()
    for row in rows:
        log_id = row.unit_id if row.unit_id is not None else 0
        frontier = logs.setdefault(log_id, [])
        seq = sum(1 << h for h, _ in frontier)
        app_seq = None
        if row.application_id is not None:
            app_seq = app_seqs[row.application_id] = app_seqs.get(row.application_id, 0) + 1
        at = row.at.astimezone(UTC)
        detail = row.detail if not isinstance(row.detail, str) else json.loads(row.detail)
        fields = {"v": 1, "log_id": log_id, "seq": seq, "app_seq": app_seq, "at": at.isoformat(),
                  "unit_id": row.unit_id, "application_id": row.application_id, "actor": row.actor,
                  "action": row.action, "step": row.step, "detail": detail, "data_digest": row.data_digest}
        leaf = leaf_hash(fields)
        frontier_append(frontier, leaf)
        conn.execute(events.update().where(events.c.id == row.id).values(
            log_id=log_id, seq=seq, app_seq=app_seq, leaf_version=1, leaf_hash=leaf))
    heads = sa.table("audit_logs", sa.column("log_id"), sa.column("size"), sa.column("root"),
                     sa.column("frontier", sa.JSON()))
    for log_id, frontier in logs.items():
        conn.execute(heads.insert().values(log_id=log_id, size=sum(1 << h for h, _ in frontier),
                                           root=frontier_root(frontier) if frontier else EMPTY_ROOT,
                                           frontier=frontier))


def downgrade() -> None:
    raise NotImplementedError("the HMAC chain cannot be rebuilt without its key; restore a backup instead")
