"""canned_replies: the support team's saved answers

Revision ID: f6b8d0c2e4a6
Revises: e5a7c9b1d3f2
Create Date: 2026-12-02 20:35:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f6b8d0c2e4a6'
down_revision = 'e5a7c9b1d3f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'canned_replies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shortcut', sa.String(length=32), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('shortcut'),
    )


def downgrade():
    op.drop_table('canned_replies')
