"""token_families.revoked_at indexed: each process looks once a second for sessions
ended by another (a command, or a server without Redis), and closes their sockets

Revision ID: c4e6a8b0d2f4
Revises: b3d5f7a9c1e2
Create Date: 2026-12-06 23:20:00

"""
from alembic import op


revision = 'c4e6a8b0d2f4'
down_revision = 'b3d5f7a9c1e2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        op.f('ix_token_families_revoked_at'), 'token_families', ['revoked_at'], unique=False
    )


def downgrade():
    op.drop_index(op.f('ix_token_families_revoked_at'), table_name='token_families')
