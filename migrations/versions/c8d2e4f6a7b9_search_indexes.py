"""search indexes: trigram (pg_trgm) indexes on users.name and users.email

The inbox's `q` matches a fragment anywhere in a customer's name or email; a b-tree
cannot serve `LIKE '%…%'`, a trigram GIN index can. On SQLite the same names get plain
indexes, so models and migrations agree on both.

Revision ID: c8d2e4f6a7b9
Revises: b7c1d2e3f4a5
Create Date: 2026-12-02 01:00:00

"""
from alembic import op


revision = 'c8d2e4f6a7b9'
down_revision = 'b7c1d2e3f4a5'
branch_labels = None
depends_on = None

INDEXES = (('ix_users_name_trgm', 'name'), ('ix_users_email_trgm', 'email'))


def upgrade():
    if op.get_context().dialect.name == 'postgresql':
        # Trusted since PostgreSQL 13: the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, column in INDEXES:
        op.create_index(
            name, 'users', [column],
            postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'},
        )


def downgrade():
    # The extension stays: other schemas in the database may use it.
    for name, _ in INDEXES:
        op.drop_index(name, table_name='users')
