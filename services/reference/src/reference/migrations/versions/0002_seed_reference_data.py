"""Load the administrative units and the seed lists (announcing list items).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from reference.seeding import seed_admin_units, seed_lists

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    seed_admin_units(bind)
    seed_lists(bind)


def downgrade() -> None:
    op.execute("DELETE FROM list_items")
    op.execute("DELETE FROM wards")
    op.execute("DELETE FROM districts")
    op.execute("DELETE FROM provinces")
