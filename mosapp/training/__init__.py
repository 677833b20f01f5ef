"""Training the compact spectrogram codec (``mosapp train --config configs/<name>.toml``).

One concern per module, in the order a run meets them::

    config.py      the TOML config → TrainConfig; training and held-out file lists
    data.py        each track's spectrogram image (cached on disk) → PatchSampler batches
    losses.py      loss = R + λ/q² · (D + w_mel·Mel + w_sc·SC + w_sdl·SDL), and the logged figures
    loop.py        train(): the optimisation loop, log.csv, resumption     ← mosapp train
    log.py         <out>/log.csv: one LogRow (named figures) per logged step
    checkpoint.py  <out>/checkpoint.pt (read as weights only) and the log it trims on resume
    plots.py       <out>/training.png from log.csv
    card.py        export: <export>.pt (mosapp.models.weights) + model card(s) <export>.json

**Two-band representation** (``[model] representation = "two-band"``, :mod:`mosapp.core.bands`):
one network per band image (:class:`mosapp.models.sgc_net.TwoBandHyperprior`), trained
together. Every step draws a batch of low-image patches (128 rows: 0–1378 Hz at 10.8 Hz
per bin, ``patch_frames`` frames of 11.6 ms) and one of high-image patches (256 rows of
the thesis lattice); the loss is the sum of the two bands' losses, with ``low_lambda``
for the low band (its image is 6 % of the pixels and holds the pitch, so it gets a larger
share of the bits) and the mel filterbank of each band's own lattice. ``init`` may name
thesis weights (both networks start from them) or two-band weights. The log adds kbps,
PSNR and spectral convergence of the low band; ``kbps`` is the total. Exported weights
serve the ``[output] operating_points`` (one card each, e.g. ``sgc-6``, ``sgc-12``,
``sgc-24``), which differ in their target rate and ``low_share`` (the share of the
stream's bits rate control gives the low band).

Inference does not import this package: weights files are read by :mod:`mosapp.models.weights`.
"""
