"""tickets: ticket types, agent groups, agents, tickets, ticket events, reviews

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:20:00
"""
from alembic import op
import sqlalchemy as sa
import engine.db.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

UTC = engine.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('ticket_types',
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('flow_id', sa.String(length=80), nullable=True),
    sa.Column('default_group', sa.String(length=60), nullable=False),
    sa.Column('default_priority', sa.String(length=2), nullable=False),
    sa.Column('auto_events', sa.JSON(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('key', name='pk_ticket_types'),
    )
    op.create_table('agent_groups',
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('strategy', sa.String(length=20), nullable=False),
    sa.Column('supervisor_id', sa.Integer(), nullable=True),
    sa.Column('calendar', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('notify_channel', sa.String(length=30), nullable=False),
    sa.Column('rr_last', sa.Integer(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['supervisor_id'], ['users.id'], name='fk_agent_groups_supervisor'),
    sa.PrimaryKeyConstraint('key', name='pk_agent_groups'),
    )
    op.create_table('agents',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('availability', sa.String(length=10), nullable=False),
    sa.Column('working_hours', sa.JSON(), nullable=False),
    sa.Column('contact', sa.JSON(), nullable=False),
    sa.Column('last_assigned_at', UTC, nullable=True),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_agents_user'),
    sa.PrimaryKeyConstraint('user_id', name='pk_agents'),
    )
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('type_key', sa.String(length=60), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('group_key', sa.String(length=60), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('needs', sa.JSON(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=30), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=False),
    sa.Column('order_channel', sa.String(length=20), nullable=True),
    sa.Column('order_shop', sa.String(length=80), nullable=True),
    sa.Column('order_id', sa.String(length=80), nullable=True),
    sa.Column('refund_id', sa.String(length=80), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('sla', sa.JSON(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('workflow_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('first_response_at', UTC, nullable=True),
    sa.Column('resolved_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['type_key'], ['ticket_types.key'], name='fk_tickets_type'),
    sa.ForeignKeyConstraint(['group_key'], ['agent_groups.key'], name='fk_tickets_group'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name='fk_tickets_assignee'),
    sa.ForeignKeyConstraint(['parent_id'], ['tickets.id'], name='fk_tickets_parent'),
    sa.PrimaryKeyConstraint('id', name='pk_tickets'),
    sa.UniqueConstraint('dedupe_key', name='uq_tickets_dedupe_key'),
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_tickets_parent_id', ['parent_id'], unique=False)
        batch_op.create_index('ix_tickets_group_status', ['group_key', 'status'], unique=False)
        batch_op.create_index('ix_tickets_assignee_status', ['assignee_id', 'status'], unique=False)

    op.create_table('ticket_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=True),
    sa.Column('at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name='fk_ticket_events_ticket'),
    sa.PrimaryKeyConstraint('id', name='pk_ticket_events'),
    sa.UniqueConstraint('key', name='uq_ticket_events_key'),
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_ticket_id', ['ticket_id'], unique=False)

    op.create_table('ticket_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('chain', sa.String(length=80), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('approver', sa.String(length=120), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=True),
    sa.Column('delegated_to', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', UTC, nullable=True),
    sa.Column('started_at', UTC, nullable=True),
    sa.Column('due_at', UTC, nullable=True),
    sa.Column('timeout', sa.String(length=40), nullable=True),
    sa.Column('on_timeout', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name='fk_ticket_reviews_ticket'),
    sa.ForeignKeyConstraint(['approver_id'], ['users.id'], name='fk_ticket_reviews_approver'),
    sa.ForeignKeyConstraint(['delegated_to'], ['users.id'], name='fk_ticket_reviews_delegate'),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name='fk_ticket_reviews_decider'),
    sa.PrimaryKeyConstraint('id', name='pk_ticket_reviews'),
    sa.UniqueConstraint('ticket_id', 'chain', 'round', 'step', name='uq_ticket_reviews_step'),
    )
    with op.batch_alter_table('ticket_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_reviews_ticket_id', ['ticket_id'], unique=False)

    # a ticket always has a queue: the default group, and a refund ticket type for refund events
    now = sa.func.current_timestamp()
    groups = sa.table('agent_groups', sa.column('key', sa.String), sa.column('name', sa.String),
                      sa.column('strategy', sa.String), sa.column('calendar', sa.JSON),
                      sa.column('capacity', sa.Integer), sa.column('notify_channel', sa.String),
                      sa.column('rr_last', sa.Integer), sa.column('created_at', UTC))
    op.execute(groups.insert().values(key='default', name='默认队列 Default queue', strategy='round_robin',
                                      calendar={}, capacity=10, notify_channel='wecom', rr_last=0, created_at=now))
    types = sa.table('ticket_types', sa.column('key', sa.String), sa.column('name', sa.String),
                     sa.column('fields', sa.JSON), sa.column('flow_id', sa.String),
                     sa.column('default_group', sa.String), sa.column('default_priority', sa.String),
                     sa.column('auto_events', sa.JSON), sa.column('created_at', UTC),
                     sa.column('updated_at', UTC))
    op.execute(types.insert().values(
        key='refund', name='退款工单 Refund', flow_id='refund-ticket', default_group='default', default_priority='P3',
        fields=[{'key': 'amount_fen', 'label': '退款金额（分） Refund amount (fen)', 'type': 'number', 'required': False},
                {'key': 'reason', 'label': '原因 Reason', 'type': 'text', 'required': False}],
        auto_events=['refund.requested'], created_at=now, updated_at=now))


def downgrade() -> None:
    op.drop_table('ticket_reviews')
    op.drop_table('ticket_events')
    op.drop_table('tickets')
    op.drop_table('agents')
    op.drop_table('agent_groups')
    op.drop_table('ticket_types')
