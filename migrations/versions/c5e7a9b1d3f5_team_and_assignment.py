"""team and assignment: agents, invitations, deactivation, availability, assignees

Revision ID: c5e7a9b1d3f5
Revises: b2d4f6a8c0e2
Create Date: 2026-12-07 07:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c5e7a9b1d3f5'
down_revision = 'b2d4f6a8c0e2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint('role', "role IN ('customer', 'agent', 'admin')")
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('available', sa.Boolean(), server_default=sa.text('true'), nullable=False)
        )
        batch_op.add_column(sa.Column('capacity', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table('chat_rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_chat_rooms_assignee_id_users'), 'users', ['assignee_id'], ['id'],
            ondelete='SET NULL',
        )
    op.create_index(
        'ix_chat_rooms_assignee_status', 'chat_rooms', ['assignee_id', 'status']
    )
    op.create_index(
        'ix_chat_rooms_queued_at', 'chat_rooms', ['queued_at', 'id'],
        sqlite_where=sa.text('queued_at IS NOT NULL'),
        postgresql_where=sa.text('queued_at IS NOT NULL'),
    )
    with op.batch_alter_table('room_events', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=16), server_default='status', nullable=False)
        )
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f('fk_room_events_assignee_id_users'), 'users', ['assignee_id'], ['id'],
            ondelete='SET NULL',
        )
    op.create_table(
        'staff_invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('invited_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('agent', 'admin')", name=op.f('ck_staff_invitations_role')),
        sa.ForeignKeyConstraint(
            ['invited_by'], ['users.id'], name=op.f('fk_staff_invitations_invited_by_users'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_invitations')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_staff_invitations_token_hash')),
    )


def downgrade():
    op.drop_table('staff_invitations')
    with op.batch_alter_table('room_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_room_events_assignee_id_users'), type_='foreignkey')
        batch_op.drop_column('assignee_id')
        batch_op.drop_column('kind')
    op.drop_index('ix_chat_rooms_queued_at', table_name='chat_rooms')
    op.drop_index('ix_chat_rooms_assignee_status', table_name='chat_rooms')
    with op.batch_alter_table('chat_rooms', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_chat_rooms_assignee_id_users'), type_='foreignkey')
        batch_op.drop_column('queued_at')
        batch_op.drop_column('assignee_id')
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'agent'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_assigned_at')
        batch_op.drop_column('capacity')
        batch_op.drop_column('available')
        batch_op.drop_column('deactivated_at')
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint('role', "role IN ('customer', 'admin')")
