"""Where published models' weights are found on this machine (never downloaded at run time).

A model of a hub repository (``facebook/encodec_24khz``, ``laion/clap-htsat-unfused`` …) is looked
for, in this order, in ``$MOSAPP_BASELINES_DIR/<repository name>/`` and in the Hugging Face cache
(``~/.cache/huggingface/hub``, or ``$HF_HOME``/``$HF_HUB_CACHE``), where
``huggingface_hub.snapshot_download(repo)`` puts it on a connected machine. A folder counts when it
holds the repository's ``config.json`` and its weights.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The folder of local weights (``<dir>/<repository name>``).
ENV_DIR = "MOSAPP_BASELINES_DIR"
#: File names of a model's weights, in the order they are preferred.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def candidates(repo: str) -> list[Path]:
    """The folders looked in for ``repo``, in order (whether they exist or not)."""
    places = []
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        places.append(Path(env) / repo.split("/")[-1])
    try:
        from huggingface_hub import constants  # noqa: PLC0415 — the hub client comes with the baselines extra

        hub = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots"
        places += sorted(hub.glob("*"), reverse=True) if hub.is_dir() else [hub]
    except ImportError:
        pass
    return places


def weights_file(folder: Path) -> Path | None:
    """The weights in ``folder`` when it also has a ``config.json``, else None."""
    if not (folder / "config.json").is_file():
        return None
    return next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)


def find(repo: str) -> Path | None:
    """The first folder holding ``repo``'s config and weights, or None."""
    return next((f for f in candidates(repo) if weights_file(f) is not None), None)


def fetch_command(repo: str) -> str:
    """The one command that fetches ``repo`` on a connected machine."""
    return f"python -c \"from huggingface_hub import snapshot_download; snapshot_download('{repo}')\""


def missing(repo: str, what: str) -> str:
    """One clause: ``what`` is not here, where mosapp looked, and how to fetch it."""
    places = ", ".join(str(p) for p in candidates(repo)) or f"${ENV_DIR}/{repo.split('/')[-1]}"
    return (f"{what} {repo} is not on this machine (looked in {places}); fetch it on a connected machine with "
            f"{fetch_command(repo)}, or put its folder in ${ENV_DIR}/{repo.split('/')[-1]}")


__all__ = ["ENV_DIR", "candidates", "fetch_command", "find", "missing", "weights_file"]
