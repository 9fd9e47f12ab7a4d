"""messages.internal: internal notes, seen by the support team only

Revision ID: e5a7c9b1d3f2
Revises: d2e4f6a8b0c1
Create Date: 2026-12-02 19:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e5a7c9b1d3f2'
down_revision = 'd2e4f6a8b0c1'
branch_labels = None
depends_on = None


def upgrade():
    # A constant default: PostgreSQL adds the column without rewriting the table.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('internal', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('internal')
