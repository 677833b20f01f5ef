"""Alembic migrations of the study store, shipped inside the package.

:func:`mosapp.study.store.open_store` runs them (no ``alembic.ini`` needed). A developer who
changes the models adds a revision with::

    .venv/bin/alembic -c /dev/null -x url=sqlite:///scratch.sqlite revision --autogenerate \\
        -m "what changed"   # run from mosapp/study/migrations with script_location set, see env.py

and writes ``upgrade``/``downgrade`` with ``op.batch_alter_table`` (SQLite cannot ALTER most things).
"""
