"""who holds an event's routing claim, and the holders' heartbeats: a dead holder's claims are taken over in
seconds, not after the 60 s claim lapses

Revision ID: 0019_claim_holders
Revises: 0018_mass_send_ids
Create Date: 2026-12-07 23:45:00.000000
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0019_claim_holders'
down_revision = '0018_mass_send_ids'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=120), nullable=True))
    op.create_table('claim_holders',
    sa.Column('process', sa.String(length=120), nullable=False),
    sa.Column('alive_at', engine.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('process')
    )


def downgrade() -> None:
    op.drop_table('claim_holders')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
