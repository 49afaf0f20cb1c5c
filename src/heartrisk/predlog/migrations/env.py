"""Alembic's entry point for the prediction log: migrate on the connection the caller opened and locked.

:mod:`heartrisk.predlog.migrate` passes that connection in ``config.attributes``, inside a transaction
that holds the lock, so Alembic reads the current revision only once no other process is migrating.
"""

from alembic import context

from heartrisk.predlog.migrate import VERSION_TABLE

context.configure(
    connection=context.config.attributes["connection"], version_table=VERSION_TABLE, transactional_ddl=True
)
with context.begin_transaction():
    context.run_migrations()
