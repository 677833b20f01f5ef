"""codecs/base.py's docstring names every codec family the registry advertises."""

from __future__ import annotations

import re

from mosapp.codecs import base, codec_names


def test_the_interface_docstring_names_every_family():
    doc = base.__doc__ or ""
    for name in codec_names():
        stem = re.sub(r"-[0-9.]+k?$|-q[0-9]+$", "", name)
        assert f"``{stem}-*``" in doc or f"``{name}``" in doc, name
