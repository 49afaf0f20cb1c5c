"""The client's own request id beside the server's key: ``client_request_id``, at most 64 characters, or NULL.

Revision ID: 0003
Revises: 0002

``request_id`` was the client's ``X-Request-ID`` when it sent a sane one; it is now always the server's key
(``heartrisk.serving.runtime.request_id``), and what the client sent is kept here. Rows written before keep
their ``request_id`` as it was and have no client id. Adding a nullable column rewrites no row on either
database (SQLite's ``ALTER TABLE ... ADD COLUMN``, PostgreSQL's catalog-only change).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LENGTH = 64  # heartrisk.predlog.base.CLIENT_REQUEST_ID_MAX when this was written (a unit test keeps them equal)


def upgrade() -> None:
    op.add_column("predictions", sa.Column("client_request_id", sa.String(LENGTH), nullable=True))


def downgrade() -> None:
    op.drop_column("predictions", "client_request_id")
