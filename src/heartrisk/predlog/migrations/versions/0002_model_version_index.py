"""An index on (model_version, ts): the monitor counts a window's rows per model version.

Revision ID: 0002
Revises: 0001

Without it the count reads the whole window and sorts it by version (0.2 to 0.35 s for a million rows
on SQLite here); with it, one pass over the index in version order (0.06 s). A log that already holds
rows gets the index on its next start (about 0.7 s per million rows on SQLite), under the migration lock.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("predictions_version_ts", "predictions", ["model_version", "ts"])


def downgrade() -> None:
    op.drop_index("predictions_version_ts", table_name="predictions")
