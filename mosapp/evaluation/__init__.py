"""Measuring codecs: run clips through a codec and score the result (:mod:`.evaluate`)."""
