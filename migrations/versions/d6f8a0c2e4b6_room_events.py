"""room_events: resolved and reopened, by whom, as quiet lines in the team's thread

Revision ID: d6f8a0c2e4b6
Revises: c4e6a8b0d2f4
Create Date: 2026-12-07 01:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd6f8a0c2e4b6'
down_revision = 'c4e6a8b0d2f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'room_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('after_message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['room_id'], ['chat_rooms.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_room_events_room_id_after', 'room_events', ['room_id', 'after_message_id']
    )


def downgrade():
    op.drop_index('ix_room_events_room_id_after', table_name='room_events')
    op.drop_table('room_events')
