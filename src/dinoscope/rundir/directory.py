"""The run directory: paths, the manifest, atomic writes, stage caching and the one-writer lock.

Every stage reads its inputs from here and writes its outputs here through `atomic_path`,
so a killed run leaves only whole files and the next run resumes from them. A process that writes
holds `RunDir.writing()`, so two runs never write one directory at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DinoscopeError
from .faults import crash_point

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
TEMP_SUFFIX = ".tmp"  # atomic_path's temporary files are ".<name>.<random>.tmp"
_FULL = (errno.ENOSPC, errno.EDQUOT)


class RunInUse(DinoscopeError):
    """Another process is writing this run directory."""


def _full_disk(path: Path, tmp: Path, exc: OSError) -> DinoscopeError:
    """The one-line error for a write that filled its disk: the path, what it had written, what is free."""
    written = tmp.stat().st_size if tmp.exists() else 0
    free = shutil.disk_usage(path.parent).free
    return DinoscopeError(f"no space left on the device to write {path} ({exc.strerror}): it needs more than "
                          f"{written / 2**20:.1f} MB and {free / 2**20:.1f} MB are free; free some space and rerun "
                          "(the finished files are kept)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    A full disk (ENOSPC, EDQUOT) becomes a one-line DinoscopeError naming the path and the space; the temporary
    file is removed whatever happens, so a failed write leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            crash_point(path, "before")
            os.replace(tmp_path, path)
        except OSError as exc:
            if exc.errno in _FULL or "No space left" in str(exc):
                raise _full_disk(path, tmp_path, exc) from None
            raise
        crash_point(path, "after")
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temps(root: Path) -> list[Path]:
    """Delete the temporary files that killed writers left under `root` (only a lock holder may call this)."""
    stale = [p for p in root.rglob(f".*{TEMP_SUFFIX}") if p.is_file() or p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return stale


_HELD: dict[Path, int] = {}  # run directories this process holds the writer lock of, and how many times


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold RUN/.lock exclusively while writing: a second writer gets RunInUse naming the holder.

    The lock is the kernel's (flock), so it ends with its process, however it dies: a lock left by a killed
    run is taken over at once. Re-entrant within one process. The holder removes stale temporary files.
    """
    key = root.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    root.mkdir(parents=True, exist_ok=True)
    fd = _locked(root)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "command": " ".join(sys.argv)[:300]}).encode())
        remove_stale_temps(root)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)  # the holder's name is only there while it holds the lock
            if not (root / MANIFEST).exists():  # nothing of a run was written: leave the folder as it was
                (root / LOCK).unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


def _locked(root: Path) -> int:
    """An fd of RUN/.lock holding its exclusive flock; RunInUse when another process holds it.

    A holder may unlink the file when it lets go, so the lock counts only while the path still names the
    locked file; otherwise it is taken again on the new file.
    """
    while True:
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunInUse(f"{root} is in use by another dinoscope ({holder}); wait for it to finish, or stop it, "
                           "then run again") from None
        try:
            if os.stat(root / LOCK).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it: pid, start time and command."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']}, since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not said who it is yet"


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

    def writing(self):
        """The writer lock of this run directory (see `writer_lock`): hold it around every stage that writes."""
        return writer_lock(self.path)

    def require(self, name: str) -> dict[str, Any]:
        """The record of a stage this one depends on; a clear error when it has not run."""
        rec = self.stage(name)
        if rec is None:
            raise DinoscopeError(f"{self.path}: stage '{name}' has not run yet; run `dinoscope {name}` first")
        return rec
