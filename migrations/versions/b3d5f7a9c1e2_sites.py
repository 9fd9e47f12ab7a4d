"""sites: the businesses' sites that sign their users' identities for the widget

A site's customers are users keyed by (site, the site's own id for them), with the
email the site gives; the unique email stays only among accounts of ours (no site).
Downgrading deletes the sites' customers (and, on PostgreSQL, their conversations).

Revision ID: b3d5f7a9c1e2
Revises: a1c3e5f7b9d2
Create Date: 2026-12-06 22:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b3d5f7a9c1e2'
down_revision = 'a1c3e5f7b9d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sites',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('secret', sa.String(length=64), nullable=False),
        sa.Column('origins', sa.Text(), nullable=False),
        sa.Column('login_url', sa.String(length=2048), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
        sa.UniqueConstraint('key', name=op.f('uq_sites_key')),
    )
    # SQLite cannot drop a constraint in place: batch mode copies the table.
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch.drop_constraint('uq_users_email', type_='unique')
        batch.create_foreign_key(
            op.f('fk_users_site_id_sites'), 'sites', ['site_id'], ['id']
        )
        batch.create_unique_constraint('uq_users_site_external', ['site_id', 'external_id'])
        batch.create_check_constraint(
            op.f('ck_users_site_identity_complete'),
            '(site_id IS NULL) = (external_id IS NULL)',
        )
    op.create_index(
        'uq_users_email',
        'users',
        ['email'],
        unique=True,
        sqlite_where=sa.text('site_id IS NULL'),
        postgresql_where=sa.text('site_id IS NULL'),
    )


def downgrade():
    op.drop_index('uq_users_email', table_name='users')
    op.execute('DELETE FROM users WHERE site_id IS NOT NULL')
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint(op.f('ck_users_site_identity_complete'), type_='check')
        batch.drop_constraint('uq_users_site_external', type_='unique')
        batch.drop_constraint(op.f('fk_users_site_id_sites'), type_='foreignkey')
        batch.create_unique_constraint('uq_users_email', ['email'])
        batch.drop_column('external_id')
        batch.drop_column('site_id')
    op.drop_table('sites')
