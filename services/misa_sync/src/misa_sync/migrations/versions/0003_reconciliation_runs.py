"""reconciliation runs: the job's results, kept for the API

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "misa_reconciliations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("refresh", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("mirror_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mirror_full_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_misa_reconciliations")),
    )
    op.create_index("ix_misa_reconciliations_started", "misa_reconciliations", ["started_at", "id"])
    op.create_index(
        "ix_misa_reconciliations_outcome_started",
        "misa_reconciliations",
        ["outcome", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_misa_reconciliations_outcome_started", table_name="misa_reconciliations")
    op.drop_index("ix_misa_reconciliations_started", table_name="misa_reconciliations")
    op.drop_table("misa_reconciliations")
