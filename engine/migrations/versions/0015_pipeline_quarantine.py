"""pipeline: routing claims and attempts on events, the quarantine, workers' lag (issues 14 and 18)

Revision ID: 0015_pipeline
Revises: 0014_uxa
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0015_pipeline'
down_revision = '0014_uxa'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('claimed_until', engine.db.models.UTCDateTime(timezone=True), nullable=True))
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('redriven_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redriven_by', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_kind_ref', ['kind', 'ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_status'), ['status'], unique=False)
    op.create_table('worker_lag',
    sa.Column('worker', sa.String(length=120), nullable=False),
    sa.Column('lag_seconds', sa.Float(), nullable=False),
    sa.Column('done_per_second', sa.Float(), nullable=False),
    sa.Column('updated_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('worker')
    )


def downgrade() -> None:
    op.drop_table('worker_lag')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_status'))
        batch_op.drop_index('ix_quarantine_kind_ref')
    op.drop_table('quarantine')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('attempts')
