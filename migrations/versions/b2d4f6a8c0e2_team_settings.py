"""team_settings: the team's business hours and away message

Revision ID: b2d4f6a8c0e2
Revises: a9c1e3f5b7d9
Create Date: 2026-12-07 04:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b2d4f6a8c0e2'
down_revision = 'a9c1e3f5b7d9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'team_settings',
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade():
    op.drop_table('team_settings')
