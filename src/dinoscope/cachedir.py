"""Where dinoscope keeps what it fetches or measures once per machine: $DINOSCOPE_CACHE, else ~/.cache/dinoscope."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache folder (downloaded datasets, per-machine measurements); not created here."""
    return Path(os.environ.get("DINOSCOPE_CACHE") or "~/.cache/dinoscope").expanduser()
