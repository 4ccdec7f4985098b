"""A list of image paths in a text file (one per line, optionally a tab and a label): images spread over a shared
filesystem, as a cluster sees them, without a folder of their own."""

from __future__ import annotations

from pathlib import Path

from ..errors import DinoscopeError
from ..hashing import fingerprint
from .base import Dataset
from .folder import file_stamp, read_file
from .reasons import printable


def load_list(path: Path) -> Dataset:
    """The images a .txt file lists: one path per line, relative ones taken from the list's folder, `path<TAB>label`
    for labels (all lines or none), blank lines and lines starting with '#' skipped; ids are the paths as written.
    A listed file that is missing or no image is reported and skipped when extracted, like a folder's."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DinoscopeError(f"cannot read the list of images {printable(str(path))} ({exc})") from None
    rows = [line.rstrip("\r").split("\t") for line in text.split("\n") if line.strip() and not line.startswith("#")]
    if not rows:
        raise DinoscopeError(f"{printable(str(path))} lists no images; write one image path per line")
    if any(len(row) > 2 for row in rows) or len({len(row) for row in rows}) > 1:
        raise DinoscopeError(f"{printable(str(path))}: every line must be a path, or a path, a tab and a label "
                             "(all lines alike)")
    ids = [row[0] for row in rows]
    if len(set(ids)) != len(ids):
        raise DinoscopeError(f"{printable(str(path))} lists some images more than once; list each path once")
    labels = [row[1] for row in rows] if len(rows[0]) == 2 else None
    base = path.parent.absolute()
    files = [base / p for p in ids]
    return Dataset(
        name=path.stem,
        ids=ids,
        origins=[printable(str(f)) for f in files],
        labels=labels,
        splits=None,
        fingerprint=fingerprint(["list", [[i, *file_stamp(f)] for i, f in zip(ids, files, strict=True)], labels]),
        read=lambda i: read_file(files[i], ids[i]),
        classes=sorted(set(labels)) if labels else None,
        read_small=lambda i, side: read_file(files[i], ids[i], side),
    )
