"""``python -m mosapp`` → :func:`mosapp.cli.main`."""

import sys

from mosapp.cli import main

sys.exit(main())
