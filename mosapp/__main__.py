"""``python -m mosapp`` → :func:`mosapp.cli.main.main`."""

import sys

from mosapp.cli.main import main

sys.exit(main())
