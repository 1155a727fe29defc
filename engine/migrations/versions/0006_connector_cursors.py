"""connector cursors: how far each polled shop connector has read its orders / refunds

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 15:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connector_cursors',
    sa.Column('connector_id', sa.String(length=80), nullable=False),
    sa.Column('stream', sa.String(length=40), nullable=False),
    sa.Column('position', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('connector_id', 'stream')
    )


def downgrade() -> None:
    op.drop_table('connector_cursors')
