"""Conversions after a grant: the kind of each notice (grant or price publicity), income receipts,
deductions and distribution plans with their shares; the unit's double-reward setting.

Revision ID: 0004_conversion
Revises: 0003_registry
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_conversion'
down_revision = '0003_registry'
branch_labels = None
depends_on = None


def _money() -> sa.Numeric:
    return sa.Numeric(precision=14, scale=2)


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reward_after_grant', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('leader_publicity_days', sa.Integer(), server_default='15', nullable=False))
    with op.batch_alter_table('publicity_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='grant', nullable=False))
    op.create_table(
        'income_receipts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversion_id', sa.Integer(), nullable=False),
        sa.Column('received_on', sa.String(length=10), nullable=False),
        sa.Column('amount', _money(), nullable=False),
        sa.Column('evidence_document_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversion_id'], ['applications.id']),
        sa.ForeignKeyConstraint(['evidence_document_id'], ['documents.id']),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_income_receipts_conversion_id', 'income_receipts', ['conversion_id'])
    op.create_table(
        'income_deductions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversion_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('incurred_on', sa.String(length=10), nullable=False),
        sa.Column('amount', _money(), nullable=False),
        sa.Column('evidence_document_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversion_id'], ['applications.id']),
        sa.ForeignKeyConstraint(['evidence_document_id'], ['documents.id']),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_income_deductions_conversion_id', 'income_deductions', ['conversion_id'])
    op.create_table(
        'distributions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversion_id', sa.Integer(), nullable=False),
        sa.Column('period_from', sa.String(length=10), nullable=False),
        sa.Column('period_to', sa.String(length=10), nullable=False),
        sa.Column('received', _money(), nullable=False),
        sa.Column('deducted', _money(), nullable=False),
        sa.Column('net_income', _money(), nullable=False),
        sa.Column('to_people', _money(), nullable=False),
        sa.Column('to_office', _money(), nullable=False),
        sa.Column('to_unit', _money(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('process_id', sa.Integer(), nullable=True),
        sa.Column('proposed_by_id', sa.Integer(), nullable=False),
        sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversion_id'], ['applications.id']),
        sa.ForeignKeyConstraint(['process_id'], ['applications.id']),
        sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_distributions_conversion_id', 'distributions', ['conversion_id'])
    op.create_table(
        'distribution_shares',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('distribution_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('leader_post', sa.String(length=16), nullable=False),
        sa.Column('mode', sa.String(length=24), nullable=False),
        sa.Column('amount', _money(), nullable=False),
        sa.Column('contribution', sa.String(length=1000), nullable=False),
        sa.Column('paid_on', sa.String(length=10), nullable=True),
        sa.Column('payment_reference', sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(['distribution_id'], ['distributions.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_distribution_shares_distribution_id', 'distribution_shares', ['distribution_id'])


def downgrade() -> None:
    for table in ('distribution_shares', 'distributions', 'income_deductions', 'income_receipts'):
        op.drop_table(table)
    with op.batch_alter_table('publicity_notices', schema=None) as batch_op:
        batch_op.drop_column('kind')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('leader_publicity_days')
        batch_op.drop_column('reward_after_grant')
