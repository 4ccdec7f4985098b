"""The run directory: paths, the manifest, atomic writes and stage caching.

Every stage reads its inputs from here and writes its outputs here through `atomic_path`,
so a killed run leaves only whole files and the next run resumes from them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DinoscopeError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically, pretty-printed so people can read it."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour shapes the results, for the manifest."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("dinoscope", "torch", "timm", "numpy", "scikit-learn", "openTSNE", "umap-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


class RunDir:
    """One run's folder and its manifest (settings, versions, fingerprints, stage status, timings)."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path)
        if not create and not (self.path / MANIFEST).exists():
            raise DinoscopeError(
                f"{self.path} is not a dinoscope run directory (no {MANIFEST}); "
                "run `dinoscope extract` or `dinoscope run` with --out first"
            )
        self.manifest = self._load()

    def _load(self) -> dict[str, Any]:
        mpath = self.path / MANIFEST
        if not mpath.exists():
            if self.path.exists() and not self.path.is_dir():
                raise DinoscopeError(f"{self.path} exists and is not a folder; choose another --out")
            return {"format_version": FORMAT_VERSION, "stages": {}}
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DinoscopeError(
                f"{mpath} is unreadable ({exc}); remove the run directory or use another --out"
            ) from None
        found = manifest.get("format_version")
        if found != FORMAT_VERSION:
            raise DinoscopeError(
                f"{self.path} was written by an incompatible dinoscope (run format {found}, "
                f"this version reads {FORMAT_VERSION}); use a new --out or remove it"
            )
        manifest.setdefault("stages", {})
        return manifest

    def file(self, name: str) -> Path:
        """Path of an artifact inside the run directory."""
        return self.path / name

    def save(self) -> None:
        """Write the manifest atomically."""
        self.manifest["format_version"] = FORMAT_VERSION
        self.manifest["versions"] = versions()
        write_json(self.path / MANIFEST, self.manifest)

    def stage(self, name: str) -> dict[str, Any] | None:
        """The manifest record of a finished stage, or None."""
        return self.manifest["stages"].get(name)

    def is_fresh(self, name: str, key: str, outputs: list[str]) -> bool:
        """True when the stage finished with the same key and all its outputs are whole on disk."""
        rec = self.stage(name)
        return bool(rec) and rec.get("key") == key and all(self.file(o).exists() for o in outputs)

    def mark_done(self, name: str, key: str, seconds: float, outputs: list[str], **extra: Any) -> None:
        """Record a finished stage; later stages use `key` as this stage's output fingerprint."""
        self.manifest["stages"][name] = {
            "key": key,
            "seconds": round(seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "outputs": outputs,
            **extra,
        }
        self.save()

    def require(self, name: str) -> dict[str, Any]:
        """The record of a stage this one depends on; a clear error when it has not run."""
        rec = self.stage(name)
        if rec is None:
            raise DinoscopeError(f"{self.path}: stage '{name}' has not run yet; run `dinoscope {name}` first")
        return rec
