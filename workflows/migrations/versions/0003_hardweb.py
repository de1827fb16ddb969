"""Sign-out ends the session (users.session_nonce) and a unit decides whether its auditors
see who objected (units.auditors_see_objectors, default yes).

Revision ID: 0003_hardweb
Revises: 0003_hardengine
"""
from alembic import op
import sqlalchemy as sa


revision = "0003_hardweb"
down_revision = "0003_hardengine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auditors_see_objectors", sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_nonce", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_nonce")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("auditors_see_objectors")
