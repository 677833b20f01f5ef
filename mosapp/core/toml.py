"""Reading TOML (study definitions, training configs): :mod:`tomllib`, or its backport ``tomli`` on Python 3.10.

>>> from mosapp.core.toml import TOMLDecodeError, loads
>>> loads('name = "sgc-12"')
{'name': 'sgc-12'}
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (declared in pyproject for < 3.11)
    import tomli as tomllib

#: Parse a TOML document (a ``str``) into a dict.
loads = tomllib.loads
#: What :func:`loads` raises for text that is not TOML.
TOMLDecodeError = tomllib.TOMLDecodeError

__all__ = ["TOMLDecodeError", "loads"]
