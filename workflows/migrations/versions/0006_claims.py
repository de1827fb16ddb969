"""The live claims on IP numbers (同一成果不重复激励, §三(一)3): one row per number an open grant
application claims (not an extension, not refused or withdrawn; `registry_entry_id` NULL) or a
registry entry linked to an application and past 在库 claims (`registry_entry_id` set,
`application_id` the entry's application). The draft check reads these rows for its own numbers
instead of every open application's, and the partial unique index on application claims makes
the database refuse the second of two drafts naming the same number at once. Built here from the
rows (the rule written out, so this revision stays as it is); kept since by models
`claim_numbers`, `_reclaim_application` and `_reclaim_entry`. Where the old check-then-act let two
open applications of a unit through with the same number, the oldest (lowest id) keeps the claim
and the others are printed and left without one.

Revision ID: 0006_claims
Revises: 0005_stats
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_claims"
down_revision = "0005_stats"
branch_labels = None
depends_on = None

BATCH = 1000
EXTENSION = "extension"  # catalogue KindCode.EXTENSION at this revision
RELEASING = ("refused", "withdrawn")  # StatusCode.REFUSED, StatusCode.WITHDRAWN
REGISTERED = "registered"  # RegistryState.REGISTERED


def upgrade() -> None:
    claims = op.create_table(
        "ip_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("ip_number", sa.String(length=200), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("registry_entry_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.ForeignKeyConstraint(["registry_entry_id"], ["registry_entries.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"))
    op.create_index("ix_ip_claims_number", "ip_claims", ["unit_id", "ip_number"])
    op.create_index("ix_ip_claims_application_id", "ip_claims", ["application_id"])
    op.create_index("ix_ip_claims_registry_entry_id", "ip_claims", ["registry_entry_id"])
    bind = op.get_bind()
    apps = sa.table("applications", sa.column("id"), sa.column("unit_id"), sa.column("kind"), sa.column("status"),
                    sa.column("ip_numbers", sa.JSON()))
    entries = sa.table("registry_entries", sa.column("id"), sa.column("unit_id"), sa.column("status"),
                       sa.column("application_id"), sa.column("ip_numbers", sa.JSON()))
    rows: list[dict] = []
    held: dict[tuple[int, str], int] = {}
    skipped = []
    for app_id, unit_id, kind, status, numbers in bind.execute(sa.select(
            apps.c.id, apps.c.unit_id, apps.c.kind, apps.c.status, apps.c.ip_numbers).order_by(apps.c.id)):
        if kind == EXTENSION or status in RELEASING:
            continue
        for number in sorted({str(n) for n in numbers or ()}):
            if (unit_id, number) in held:
                skipped.append((unit_id, number, app_id, held[(unit_id, number)]))
                continue
            held[(unit_id, number)] = app_id
            rows.append({"unit_id": unit_id, "ip_number": number, "application_id": app_id, "registry_entry_id": None})
    for entry_id, unit_id, status, app_id, numbers in bind.execute(sa.select(
            entries.c.id, entries.c.unit_id, entries.c.status, entries.c.application_id, entries.c.ip_numbers)):
        if app_id is None or status == REGISTERED:
            continue
        rows.extend({"unit_id": unit_id, "ip_number": number, "application_id": app_id, "registry_entry_id": entry_id}
                    for number in sorted({str(n) for n in numbers or ()}))
    for first in range(0, len(rows), BATCH):
        op.bulk_insert(claims, rows[first:first + BATCH])
    for unit_id, number, app_id, holder in skipped:
        print(f"0006_claims: unit {unit_id} number {number!r}: application {app_id} left without a claim, "
              f"application {holder} (older) holds it")
    if skipped:
        print(f"0006_claims: {len(skipped)} duplicate claim(s) skipped (let through before the claims table)")
    where = sa.text("registry_entry_id IS NULL")
    op.create_index("uq_ip_claims_application", "ip_claims", ["unit_id", "ip_number"], unique=True,
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_table("ip_claims")
