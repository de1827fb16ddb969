"""Notifications keep their message template and parameters, so each reader sees them in their
language (older rows keep their stored Chinese text).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:42:16.108519
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('template')

