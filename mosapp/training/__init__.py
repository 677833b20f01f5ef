"""Training the compact spectrogram codec (``mosapp train``)."""
