"""hardening: why a journey failed (journeys.error)

Revision ID: 0013_harden
Revises: 0012_wf2
Create Date: 2026-12-06 03:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_harden'
down_revision = '0012_wf2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('journeys') as batch:
        batch.add_column(sa.Column('error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('journeys') as batch:
        batch.drop_column('error')
