"""Learned networks (the compact spectrogram codec); importing this pulls in compressai."""
