"""wf2: mass sends made by flows (action.wecom_mass_send) — which mass send each idempotency key became

Revision ID: 0012_wf2
Revises: 0011_growth
Create Date: 2026-12-06 05:30:00
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0012_wf2'
down_revision = '0011_growth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mass_send_requests',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('mass_send_id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=120), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('workflow_id', sa.String(length=300), nullable=False),
    sa.Column('flow_id', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=80), nullable=False),
    sa.Column('run_key', sa.String(length=120), nullable=True),
    sa.Column('variables', sa.JSON(), nullable=False),
    sa.Column('created_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notified_at', engine.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['mass_send_id'], ['mass_sends.id'], ),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('mass_send_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mass_send_requests_mass_send_id'), ['mass_send_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mass_send_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mass_send_requests_mass_send_id'))
    op.drop_table('mass_send_requests')
