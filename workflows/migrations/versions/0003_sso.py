"""A unit may turn password sign-in off once its staff sign in through single sign-on.

Revision ID: 0003_sso
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_sso'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_sign_in', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('password_sign_in')
