"""Schema revisions of the study store, oldest first (``r0001_…``, ``r0002_…``)."""
