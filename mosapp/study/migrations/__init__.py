"""Alembic migrations of the study store, shipped inside the package (no ``alembic.ini``).

:func:`mosapp.study.store.open_store` runs them on every open: a new database is created at
the newest revision, an older one is upgraded in one transaction, a newer one is refused.

A developer who changes the models in :mod:`mosapp.study.store` adds a revision::

    from alembic import command
    from mosapp.study.store import _alembic_config
    cfg = _alembic_config()
    cfg.set_main_option("sqlalchemy.url", "sqlite:////tmp/scratch.sqlite")  # at the previous head
    command.upgrade(cfg, "head")
    command.revision(cfg, message="what changed", autogenerate=True, rev_id="0003")

then names the file ``versions/r0003_<what>.py``, checks ``upgrade``/``downgrade`` (SQLite needs
``op.batch_alter_table`` for most changes; ``env.py`` renders batch operations), and keeps
``tests/study/test_store.py::test_the_models_match_the_migrations`` green.
"""
