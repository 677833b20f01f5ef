"""The core: audio I/O, the Gaussian STFT and its image, configuration, errors, metrics.

Everything else in mosapp builds on these modules; they import nothing from the rest of
the package (and nothing from Qt). See ``docs/architecture.md``.
"""
