"""emails: each user's language, a customer's unsubscribe time and an agent's alert
choice, and each room's last emailed message and alert, with their send claims

Revision ID: a9c1e3f5b7d9
Revises: e7a9c1d3f5b7
Create Date: 2026-12-07 05:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a9c1e3f5b7d9'
down_revision = 'e7a9c1d3f5b7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('emails_off_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column('alert_emails_off', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table('chat_rooms') as batch:
        batch.add_column(sa.Column('emailed_through_id', sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column('email_claimed_until', sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column('agents_alerted_through_id', sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column('agents_claimed_until', sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('chat_rooms') as batch:
        batch.drop_column('agents_claimed_until')
        batch.drop_column('agents_alerted_through_id')
        batch.drop_column('email_claimed_until')
        batch.drop_column('emailed_through_id')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('alert_emails_off')
        batch.drop_column('emails_off_at')
        batch.drop_column('locale')
