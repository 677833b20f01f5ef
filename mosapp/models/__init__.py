"""Learned networks: the compact spectrogram codec's (``sgc_net``, which imports compressai), their
weights files (``weights``) and model cards (``card``: no torch), and the published models the
baselines and FAD use (``hub``, ``clap``). Importing this package itself loads none of them."""
