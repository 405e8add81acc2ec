"""A customer replica for duplicate candidates; reject reason codes; queue columns.

- ``customers``: the replica kept from ims.customer.events.v1 (approval.replica), with
  exact-match indexes on tax code, phone and e-mail and a GIN index on (2025 province,
  trigrams of the stop-word-stripped name) for approval.duplicates (pg_trgm, btree_gin);
- ``reviews`` gains ``reason_code``, ``changes``, ``duplicates``/``has_duplicates`` and,
  for the queue, ``full_name``, ``sales_unit`` and ``search_text`` with their indexes.

Backfill: existing reviews get their queue columns from their snapshots, and the replica
is seeded with the latest reviewed state of each customer (events correct it from there:
they carry newer versions). Existing reviews keep an empty duplicates list.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from approval.matchkeys import review_search_text
from approval.replica import replica_values

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # btree_gin: the province and the name's trigrams in one GIN index.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("customer_code", sa.Text(), nullable=True),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("company_name", sa.Text(), nullable=True),
        sa.Column("tax_code", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("province_code", sa.Text(), nullable=True),
        sa.Column("match_name", sa.Text(), nullable=False),
        sa.Column("match_address", sa.Text(), nullable=False),
        sa.Column("match_province", sa.Text(), nullable=True),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_index(
        "ix_customers_tax_code",
        "customers",
        ["tax_code"],
        postgresql_where=sa.text("tax_code IS NOT NULL"),
    )
    op.create_index(
        "ix_customers_phone", "customers", ["phone"], postgresql_where=sa.text("phone IS NOT NULL")
    )
    op.create_index(
        "ix_customers_email", "customers", ["email"], postgresql_where=sa.text("email IS NOT NULL")
    )
    op.create_index(
        "ix_customers_province_match_name",
        "customers",
        ["match_province", "match_name"],
        postgresql_using="gin",
        postgresql_ops={"match_name": "gin_trgm_ops"},
    )

    op.add_column("reviews", sa.Column("reason_code", sa.Text(), nullable=True))
    op.add_column(
        "reviews", sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "reviews",
        sa.Column(
            "duplicates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "reviews",
        sa.Column("has_duplicates", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("reviews", sa.Column("full_name", sa.Text(), server_default="", nullable=False))
    op.add_column("reviews", sa.Column("sales_unit", sa.Text(), nullable=True))
    op.add_column("reviews", sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    _backfill_reviews()
    _seed_replica()
    op.create_index(
        "ix_reviews_unit_status_created", "reviews", ["sales_unit", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_reviews_submitter_status_created",
        "reviews",
        ["submitted_by", "status", "created_at", "id"],
    )
    op.create_index(
        "ix_reviews_pending_duplicates",
        "reviews",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'pending' AND has_duplicates"),
    )
    op.create_index(
        "ix_reviews_search_trgm",
        "reviews",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )


def _batches(sql: str) -> Iterator[Sequence[sa.Row[Any]]]:
    """Rows of `sql` (keyed by its first column, taking :after), BATCH at a time."""
    bind = op.get_bind()
    after = None
    while True:
        stmt = sa.text(sql).columns(customer=postgresql.JSONB)
        rows = bind.execute(stmt, {"after": after, "batch": BATCH}).all()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _backfill_reviews() -> None:
    bind = op.get_bind()
    for rows in _batches(
        "SELECT id, customer, customer_code FROM reviews"
        " WHERE CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid)"
        " ORDER BY id LIMIT :batch"
    ):
        bind.execute(
            sa.text(
                "UPDATE reviews SET full_name = :full_name, sales_unit = :sales_unit,"
                " search_text = :search_text WHERE id = :id"
            ),
            [
                {
                    "id": row.id,
                    "full_name": str(row.customer.get("full_name") or ""),
                    "sales_unit": row.customer.get("sales_unit_code") or None,
                    "search_text": review_search_text(row.customer, row.customer_code),
                }
                for row in rows
            ],
        )


#: The replica as this migration creates it (the model may gain columns later).
_replica = sa.table(
    "customers",
    sa.column("customer_id", sa.UUID()),
    *(
        sa.column(name, sa.Integer() if name == "version" else sa.Text())
        for name in (
            "version",
            "status",
            "customer_code",
            "full_name",
            "company_name",
            "tax_code",
            "phone",
            "email",
            "address",
            "province_code",
            "match_name",
            "match_address",
            "match_province",
        )
    ),
    sa.column("snapshot", postgresql.JSONB()),
)
_STATUS_OF_REVIEW = {"pending": "pending", "approved": "active", "rejected": "rejected"}


def _seed_replica() -> None:
    """Each customer's latest new review (any decision) or approved change: what the
    customer became. A rejected change never applied, so it is left out."""
    bind = op.get_bind()
    for rows in _batches(
        "SELECT DISTINCT ON (customer_id) customer_id, customer_version, status, customer,"
        " customer_code FROM reviews"
        " WHERE (kind = 'new' OR status = 'approved') AND status <> 'superseded'"
        " AND (CAST(:after AS uuid) IS NULL OR customer_id > CAST(:after AS uuid))"
        " ORDER BY customer_id, customer_version DESC LIMIT :batch"
    ):
        values = []
        for row in rows:
            snapshot = dict(row.customer)
            if row.customer_code:
                snapshot["customer_code"] = row.customer_code
            full = replica_values(
                row.customer_id, row.customer_version, snapshot, _STATUS_OF_REVIEW[row.status]
            )
            values.append({c.name: full[c.name] for c in _replica.columns})
        bind.execute(postgresql.insert(_replica).on_conflict_do_nothing(), values)


def downgrade() -> None:
    op.drop_index("ix_reviews_search_trgm", table_name="reviews")
    op.drop_index("ix_reviews_pending_duplicates", table_name="reviews")
    op.drop_index("ix_reviews_submitter_status_created", table_name="reviews")
    op.drop_index("ix_reviews_unit_status_created", table_name="reviews")
    for column in (
        "search_text",
        "sales_unit",
        "full_name",
        "has_duplicates",
        "duplicates",
        "changes",
        "reason_code",
    ):
        op.drop_column("reviews", column)
    op.drop_index("ix_customers_province_match_name", table_name="customers")
    op.drop_index("ix_customers_email", table_name="customers")
    op.drop_index("ix_customers_phone", table_name="customers")
    op.drop_index("ix_customers_tax_code", table_name="customers")
    op.drop_table("customers")
