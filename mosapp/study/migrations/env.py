"""Alembic environment of the study store.

Run by :func:`mosapp.study.store.open_store`, which hands over an open connection in
``config.attributes["connection"]``; a developer's ``alembic`` command passes
``-x url=SQLALCHEMY_URL`` instead. Importing this module outside Alembic does nothing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mosapp.study.store import Base


def _under_alembic() -> bool:
    try:
        context.config  # noqa: B018 - outside an Alembic run: NameError, or AttributeError before any run
    except (NameError, AttributeError):
        return False
    return True


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("Give the study database as `alembic -x url=<SQLAlchemy URL>` or sqlalchemy.url.")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if _under_alembic():
    run_migrations()
