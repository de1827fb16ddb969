"""Scale: the SpiffWorkflow spec stored once per process version (states keep only their task
tree and data), read-model summaries on applications and notices, indexes for every list.

Revision ID: 0003_scale
Revises: 0003_hardweb
"""
import base64
import hashlib
import json
import zlib

from alembic import op
import sqlalchemy as sa


revision = '0003_scale'
down_revision = '0003_hardweb'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spec', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('spec_sha256', sa.String(length=64), nullable=True))
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.create_index('ix_apps_unit_updated', ['unit_id', 'updated_at'], unique=False)
        batch_op.create_index('ix_apps_unit_created', ['unit_id', 'created_at'], unique=False)
        batch_op.create_index('ix_apps_updated', ['updated_at'], unique=False)
        batch_op.create_index('ix_apps_created', ['created_at'], unique=False)
        batch_op.create_index('ix_apps_representative', ['representative_id'], unique=False)
    with op.batch_alter_table('publicity_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.create_index('ix_notices_open', ['closed_at', 'ends_at'], unique=False)
    with op.batch_alter_table('application_members', schema=None) as batch_op:
        batch_op.create_index('ix_members_user', ['user_id'], unique=False)
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_queue')
        batch_op.drop_index('ix_tasks_assignee')
        batch_op.create_index('ix_tasks_queue', ['state', 'unit_id', 'role', 'created_at'], unique=False)
        batch_op.create_index('ix_tasks_assignee', ['state', 'assignee_id', 'created_at'], unique=False)
        batch_op.create_index('ix_tasks_role_created', ['state', 'role', 'created_at'], unique=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_unread', ['user_id', 'read_at', 'id'], unique=False)
    _split_states()
    # Waiting for the team's consents is its own status now (it showed 起草中, issue 11 finding 7).
    op.execute("UPDATE applications SET status = 'consenting' WHERE status = 'draft' AND id IN "
               "(SELECT application_id FROM human_tasks WHERE state = 'ready' AND bpmn_id = 'consent')")


def _split_states() -> None:
    """Move each state's embedded spec to its process version (the first state of a version gives
    it; all states of one version share it) and fill the summaries the lists read."""
    conn = op.get_bind()
    stored = {}
    rows = conn.execute(sa.text("SELECT application_id, process_version_id, serialized FROM workflow_states"))
    for app_id, version_id, serialized in rows.fetchall():
        dct = json.loads(_plain(serialized))
        if 'spec' not in dct:
            continue
        spec = {'spec': dct.pop('spec'), 'subprocess_specs': dct.pop('subprocess_specs')}
        if version_id not in stored:
            text = json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(',', ':'))
            stored[version_id] = hashlib.sha256(text.encode()).hexdigest()
            conn.execute(sa.text("UPDATE process_versions SET spec = :spec, spec_sha256 = :sha WHERE id = :id"),
                         {'spec': text, 'sha': stored[version_id], 'id': version_id})
        summary = _summary(_plain(serialized))
        conn.execute(sa.text("UPDATE workflow_states SET serialized = :s WHERE application_id = :id"),
                     {'s': json.dumps(dct, ensure_ascii=False, separators=(',', ':')), 'id': app_id})
        conn.execute(sa.text("UPDATE applications SET summary = :s WHERE id = :id"),
                     {'s': json.dumps(summary, ensure_ascii=False), 'id': app_id})
        conn.execute(sa.text("UPDATE publicity_notices SET summary = :s WHERE application_id = :id"),
                     {'s': json.dumps({'draft': summary.get('draft') or {}}, ensure_ascii=False), 'id': app_id})


def _plain(serialized: str) -> str:
    """States after this revision are zlib + base64 behind a `z1:` prefix (workflows/runtime.py)."""
    if serialized.startswith('z1:'):
        return zlib.decompress(base64.b64decode(serialized[3:])).decode()
    return serialized


def _summary(serialized: str) -> dict:
    """What the pages show, from the restored workflow (task data is stored as deltas)."""
    from workflows.process import runtime
    return runtime.summary(runtime.SERIALIZER.deserialize_json(serialized))


def downgrade() -> None:
    conn = op.get_bind()
    op.execute("UPDATE applications SET status = 'draft' WHERE status = 'consenting'")
    specs = dict(conn.execute(sa.text("SELECT id, spec FROM process_versions WHERE spec IS NOT NULL")).fetchall())
    rows = conn.execute(sa.text("SELECT application_id, process_version_id, serialized FROM workflow_states"))
    for app_id, version_id, serialized in rows.fetchall():
        dct = json.loads(_plain(serialized))
        if 'spec' in dct or version_id not in specs:
            continue
        dct.update(json.loads(specs[version_id]))
        conn.execute(sa.text("UPDATE workflow_states SET serialized = :s WHERE application_id = :id"),
                     {'s': json.dumps(dct), 'id': app_id})
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_unread')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_role_created')
        batch_op.drop_index('ix_tasks_assignee')
        batch_op.drop_index('ix_tasks_queue')
        batch_op.create_index('ix_tasks_assignee', ['state', 'assignee_id'], unique=False)
        batch_op.create_index('ix_tasks_queue', ['state', 'unit_id', 'role'], unique=False)
    with op.batch_alter_table('application_members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_user')
    op.drop_index('ix_notices_open', table_name='publicity_notices')
    for name in ('ix_apps_representative', 'ix_apps_created', 'ix_apps_updated', 'ix_apps_unit_created',
                 'ix_apps_unit_updated'):
        op.drop_index(name, table_name='applications')
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy would drop tables that others reference.
    for table, column in (('publicity_notices', 'summary'), ('applications', 'summary'),
                          ('process_versions', 'spec_sha256'), ('process_versions', 'spec')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
