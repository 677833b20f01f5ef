"""The command line (``mosapp …``): argument parsing, progress bars and exit codes only.

:mod:`mosapp.cli.main` holds the commands; :mod:`mosapp.cli.study` the ``mosapp study``
subcommands.
"""
