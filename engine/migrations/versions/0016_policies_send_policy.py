"""the workspace's send policy: frequency cap and default quiet hours, editable by admins

Revision ID: 0016_policies
Revises: 0015_pipeline
Create Date: 2026-12-06 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0016_policies'
down_revision = '0015_pipeline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('send_policies',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('cap_count', sa.Integer(), nullable=True),
    sa.Column('cap_window', sa.String(length=40), nullable=False),
    sa.Column('quiet_start', sa.String(length=5), nullable=True),
    sa.Column('quiet_end', sa.String(length=5), nullable=True),
    sa.Column('updated_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('send_policies')
