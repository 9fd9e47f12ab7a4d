"""message text search: a full-text GIN index on messages.body (PostgreSQL only)

The inbox's `q` also matches the text of a room's messages. On PostgreSQL each word of
the search must begin a word of the body (`to_tsvector('simple', body) @@ …:*`), which
this expression index serves. SQLite searches with LIKE and gets no index.

Revision ID: a1c3e5f7b9d2
Revises: f6b8d0c2e4a6
Create Date: 2026-12-03 14:00:00

"""
from alembic import op


revision = 'a1c3e5f7b9d2'
down_revision = 'f6b8d0c2e4a6'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().dialect.name != 'postgresql':
        return
    op.execute(
        "CREATE INDEX ix_messages_body_fts ON messages "
        "USING gin (to_tsvector('simple'::regconfig, body))"
    )


def downgrade():
    if op.get_context().dialect.name != 'postgresql':
        return
    op.drop_index('ix_messages_body_fts', table_name='messages')
