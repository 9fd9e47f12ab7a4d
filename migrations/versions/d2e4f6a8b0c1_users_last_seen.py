"""users.last_seen_at: when a customer's last socket closed (the agents' customer panel)

Revision ID: d2e4f6a8b0c1
Revises: c8d2e4f6a7b9
Create Date: 2026-12-02 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd2e4f6a8b0c1'
down_revision = 'c8d2e4f6a7b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
