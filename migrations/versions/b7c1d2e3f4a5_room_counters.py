"""room counters: the last message and each side's unread count live on the room row

The send statement keeps them up (one statement per send, no count(*) or max(id) per
message); `mark_read` recounts only the messages after the new mark.

Revision ID: b7c1d2e3f4a5
Revises: f4a85981c3c5
Create Date: 2026-12-01 22:05:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b7c1d2e3f4a5'
down_revision = 'f4a85981c3c5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_message_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('admin_unread', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.add_column(
            sa.Column('customer_unread', sa.Integer(), nullable=False, server_default='0')
        )
    op.execute(
        """
        UPDATE chat_rooms SET
          last_message_id = (SELECT max(m.id) FROM messages m WHERE m.room_id = chat_rooms.id),
          admin_unread = (
            SELECT count(*) FROM messages m
             WHERE m.room_id = chat_rooms.id AND m.author_id = chat_rooms.customer_id
               AND m.id > coalesce(chat_rooms.admin_read_id, 0)),
          customer_unread = (
            SELECT count(*) FROM messages m
             WHERE m.room_id = chat_rooms.id AND m.author_id <> chat_rooms.customer_id
               AND m.id > coalesce(chat_rooms.customer_read_id, 0))
        """
    )


def downgrade():
    with op.batch_alter_table('chat_rooms', schema=None) as batch_op:
        batch_op.drop_column('customer_unread')
        batch_op.drop_column('admin_unread')
        batch_op.drop_column('last_message_id')
