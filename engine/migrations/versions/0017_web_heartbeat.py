"""web processes' heartbeats: the web processes admitting events share the workers' capacity

Revision ID: 0017_web_heartbeat
Revises: 0016_policies
Create Date: 2026-12-06 21:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0017_web_heartbeat'
down_revision = '0016_policies'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_heartbeat',
    sa.Column('process', sa.String(length=120), nullable=False),
    sa.Column('updated_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('process')
    )


def downgrade() -> None:
    op.drop_table('web_heartbeat')
