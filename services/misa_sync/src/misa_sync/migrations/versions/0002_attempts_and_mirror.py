"""attempt log, pushed baseline on links, mirror of MISA's dictionary

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("misa_links", sa.Column("last_error_code", sa.Text(), nullable=True))
    op.add_column(
        "misa_links",
        sa.Column("pushed", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("misa_links", sa.Column("pushed_version", sa.Integer(), nullable=True))
    op.add_column(
        "misa_links", sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "misa_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.UUID(), nullable=False),
        sa.Column("customer_version", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["misa_links.customer_id"],
            name=op.f("fk_misa_attempts_customer_id_misa_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_misa_attempts")),
    )
    op.create_index("ix_misa_attempts_customer", "misa_attempts", ["customer_id", "id"])
    op.create_table(
        "misa_mirror",
        sa.Column("account_object_id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("code_key", sa.Text(), nullable=False),
        sa.Column("tax_code_key", sa.Text(), nullable=True),
        sa.Column("is_customer", sa.Boolean(), nullable=False),
        sa.Column("record", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("scan_id", sa.UUID(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_object_id", name=op.f("pk_misa_mirror")),
    )
    op.create_index(
        "ix_misa_mirror_code",
        "misa_mirror",
        ["code_key"],
        postgresql_where=sa.text("is_customer"),
    )
    op.create_index(
        "ix_misa_mirror_tax_code",
        "misa_mirror",
        ["tax_code_key"],
        postgresql_where=sa.text("is_customer"),
    )
    op.create_table(
        "misa_mirror_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_sync_time", sa.Text(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_misa_mirror_state")),
    )
    # Links synced before this revision have no baseline: the next event re-pushes them.


def downgrade() -> None:
    op.drop_table("misa_mirror_state")
    op.drop_index(
        "ix_misa_mirror_tax_code", table_name="misa_mirror", postgresql_where=sa.text("is_customer")
    )
    op.drop_index(
        "ix_misa_mirror_code", table_name="misa_mirror", postgresql_where=sa.text("is_customer")
    )
    op.drop_table("misa_mirror")
    op.drop_index("ix_misa_attempts_customer", table_name="misa_attempts")
    op.drop_table("misa_attempts")
    op.drop_column("misa_links", "last_attempt_at")
    op.drop_column("misa_links", "pushed_version")
    op.drop_column("misa_links", "pushed")
    op.drop_column("misa_links", "last_error_code")
