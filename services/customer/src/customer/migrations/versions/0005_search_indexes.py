"""Indexes for `q` search: name prefixes in index order, exact phones and tax codes.

- ``search_text`` gets the C collation (it is a machine key, folded to lower-case ASCII,
  never shown or sorted for people), so that a plain btree serves ``LIKE 'q%'``;
- ``ix_customers_search_prefix`` on ``(search_text, id)``: the folded text starts with
  the name, so "the name starts with q" is a range of this index, read in order and
  stopped after one page however many customers share the prefix (every 'Nguyễn …',
  every 'Tạp hóa …');
- ``ix_customers_phone`` and ``ix_customers_tax_code``: exact matches, ranked first.

Changing the collation rebuilds the trigram index on ``search_text``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column(
        "customers",
        "search_text",
        type_=sa.Text(collation="C"),
        existing_type=sa.Text(),
        existing_nullable=False,
    )
    op.create_index("ix_customers_search_prefix", "customers", ["search_text", "id"])
    op.create_index("ix_customers_phone", "customers", ["phone"])
    op.create_index("ix_customers_tax_code", "customers", ["tax_code"])


def downgrade() -> None:
    op.drop_index("ix_customers_tax_code", table_name="customers")
    op.drop_index("ix_customers_phone", table_name="customers")
    op.drop_index("ix_customers_search_prefix", table_name="customers")
    op.alter_column(
        "customers",
        "search_text",
        type_=sa.Text(),
        existing_type=sa.Text(collation="C"),
        existing_nullable=False,
    )
