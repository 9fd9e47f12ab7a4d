"""attachments: files in messages (the bytes in the attachment store), and each
message's attachment count

Revision ID: e7a9c1d3f5b7
Revises: d6f8a0c2e4b6
Create Date: 2026-12-07 01:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e7a9c1d3f5b7'
down_revision = 'd6f8a0c2e4b6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages') as batch:
        batch.add_column(
            sa.Column('attachment_count', sa.Integer(), server_default='0', nullable=False)
        )
    op.create_table(
        'attachments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uploader_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('thumbnail_key', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['uploader_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_attachments_uploader_id', 'attachments', ['uploader_id'])
    op.create_index('ix_attachments_message_id', 'attachments', ['message_id'])


def downgrade():
    op.drop_index('ix_attachments_message_id', table_name='attachments')
    op.drop_index('ix_attachments_uploader_id', table_name='attachments')
    op.drop_table('attachments')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('attachment_count')
