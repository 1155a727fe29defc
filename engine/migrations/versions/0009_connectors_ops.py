"""connectors' operations: unmapped messages kept raw, and each connector's sync state

Revision ID: 0009_connectors
Revises: 0008
Create Date: 2026-12-06 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0009_connectors'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connector_unmapped_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('connector_id', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=80), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('deliveries', sa.Integer(), nullable=False),
    sa.Column('received_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_received_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connector_id', 'key', name='uq_connector_unmapped_key')
    )
    op.create_index(op.f('ix_connector_unmapped_messages_connector_id'), 'connector_unmapped_messages',
                    ['connector_id'], unique=False)
    op.create_table('connector_sync_states',
    sa.Column('connector_id', sa.String(length=80), nullable=False),
    sa.Column('last_attempt_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_summary', sa.JSON(), nullable=False),
    sa.Column('resync_requested_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('connector_id')
    )


def downgrade() -> None:
    op.drop_table('connector_sync_states')
    op.drop_index(op.f('ix_connector_unmapped_messages_connector_id'), table_name='connector_unmapped_messages')
    op.drop_table('connector_unmapped_messages')
