"""The predictions table: one row per served record, with an index on time.

Revision ID: 0001
Revises: (none)

The features are the columns of :data:`heartrisk.schema.FEATURE_NAMES`, the one list of them; a change
of that list needs a new revision that adds or drops the columns (and this one then keeps the old list).
On SQLite the types are the ones the log had before it was migrated by Alembic, so a file written then
is adopted as it is; on PostgreSQL the time is a ``timestamptz``.
"""

import sqlalchemy as sa
from alembic import op

from heartrisk.schema import FEATURE_NAMES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REAL = sa.Double().with_variant(sa.REAL(), "sqlite")


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("predictions"):
        return  # a log created before its migrations existed has this very table
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True).with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("probability", REAL, nullable=False),
        sa.Column("label", sa.SmallInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        *(sa.Column(name, REAL, nullable=False) for name in FEATURE_NAMES),
        sqlite_autoincrement=True,
    )
    op.create_index("predictions_ts", "predictions", ["ts"])


def downgrade() -> None:
    op.drop_table("predictions")
