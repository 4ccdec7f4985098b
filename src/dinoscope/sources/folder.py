"""A folder of image files (searched recursively), labelled by first-level sub-folder when there are any.

Every non-hidden file under the folder is an item, whatever its name: images are recognised by their content,
and a file that is not one (a text file, a truncated JPEG, a symbolic link loop, ...) is reported as skipped,
with its reason, instead of silently left out. What is not an item is said in one warning line each: hidden
entries (names starting with '.'), symbolic links to folders (not followed: they can loop) and folders that
could not be listed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..console import warn
from ..errors import DinoscopeError
from ..hashing import fingerprint
from .base import Dataset, UnreadableImage
from .pixels import to_rgb
from .reasons import first_line, one_line, printable

# The names of image files. Decoding goes by content, so other files are tried too; these decide whether a
# folder holds images at all without opening its files.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# PIL formats never decoded: EPS runs Ghostscript, an outside interpreter, on the file.
_REFUSED_FORMATS = frozenset({"EPS"})


@dataclass
class Listing:
    """What a folder holds: its files (relative POSIX paths, sorted) and what was left out, by kind."""

    files: list[str] = field(default_factory=list)
    hidden_files: list[str] = field(default_factory=list)
    hidden_folders: list[str] = field(default_factory=list)
    linked_folders: list[str] = field(default_factory=list)
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # (folder, why it could not be listed)


def load_folder(root: Path) -> Dataset:
    """Every non-hidden file under `root` in sorted relative-path order; ids are those relative POSIX paths
    (undecodable bytes and control characters in a name escaped, see `printable`)."""
    listing = scan_folder(root)
    rels = listing.files
    if not _holds_images(root, rels):
        others = f"; {_count(len(rels), 'file')} there, none an image" if rels else ""
        hidden = f"; {_hidden(listing)} left out" if _hidden(listing) else ""
        raise DinoscopeError(
            f"{printable(str(root))} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)} in it and its "
            f"sub-folders, and for any file PIL recognises as an image{others}{hidden}); "
            "point the source at a folder of images"
        )
    _warn_left_out(root, listing)
    ids = _unique([printable(rel) for rel in rels])
    labels = [i.split("/", 1)[0] for i in ids] if all("/" in i for i in ids) else None
    # Names, sizes and modification times: changes when a file does, without reading any pixel.
    stamps = [[ident, *file_stamp(root / rel)] for ident, rel in zip(ids, rels, strict=True)]
    base = root.absolute()
    return Dataset(
        name=printable(base.name),
        ids=ids,
        origins=[printable(str(base / rel)) for rel in rels],
        labels=labels,
        splits=None,
        fingerprint=fingerprint(["folder", stamps]),
        read=lambda i: read_file(root / rels[i], ids[i]),
        classes=sorted(set(labels)) if labels else None,
        read_small=lambda i, side: read_file(root / rels[i], ids[i], side),
    )


def scan_folder(root: Path) -> Listing:
    """Every entry under `root`, sorted into files, hidden entries, links to folders and unlistable folders.

    A file is anything that is not a folder: regular files, symbolic links that do not lead to a folder
    (dangling ones and loops included), named pipes and devices; reading refuses the ones that are no image.
    """
    listing = Listing()
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(root / folder if folder else root) as it:
                entries = list(it)
        except OSError as exc:
            listing.unlisted.append((folder or ".", exc.strerror or one_line(exc)))
            continue
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if entry.name.startswith("."):
                (listing.hidden_folders if _is_folder(entry) else listing.hidden_files).append(rel)
            elif _is_link(entry):
                (listing.linked_folders if os.path.isdir(entry.path) else listing.files).append(rel)
            elif _is_folder(entry):
                pending.append(rel)
            else:
                listing.files.append(rel)
    listing.files.sort()
    return listing


def read_file(path: Path, ident: str, side: int | None = None) -> np.ndarray:
    """A listed file as upright (H, W, 3) uint8 RGB (see `decode` for `side`); what is not a readable image
    raises `UnreadableImage`.

    Only regular files are opened: a named pipe would block and a device (a link to /dev/zero) never ends.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UnreadableImage(f"{ident}: {_unreachable(path, exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableImage(f"{ident}: a {_special_kind(info.st_mode)}, not a file; it is not opened")
    if info.st_size == 0:
        raise UnreadableImage(f"{ident}: an empty file (0 bytes)")
    return decode(path, ident, side)


def decode(path, rel: str, side: int | None = None) -> np.ndarray:
    """An image file (a path or a binary file object) as upright (H, W, 3) uint8 RGB, recognised by content;
    an animation gives its first frame. Any decoding failure becomes a one-line `UnreadableImage`.

    With `side`, a JPEG is decoded at the smallest of libjpeg's scales (1/8, 1/4, 1/2, 1) that keeps both
    sides at least twice `side` (PIL's draft mode): for an image about to be shrunk to `side`, most of the
    decoding is skipped. Twice, so the final antialiased resize still averages several pixels into each: at
    `side` itself, 4.3-megapixel photos embedded by a ViT-S/16 at 224 px came out at cosine 0.998 (min 0.988) to
    full decoding, at twice 0.9998 (min 0.9989), decoding 3.5x faster than in full. Other formats decode whole.
    """
    try:
        with Image.open(path, formats=_formats()) as img:
            if img.width == 0 or img.height == 0:
                raise ValueError(f"the image has no pixels ({img.width}x{img.height})")
            if side:
                img.draft(None, (2 * side, 2 * side))
            return to_rgb(_eight_bit(ImageOps.exif_transpose(img)))
    except UnidentifiedImageError as exc:
        raise UnreadableImage(f"{printable(rel)}: cannot identify image file (not an image PIL reads)") from exc
    except Exception as exc:  # PIL raises many types on bad files (OSError, SyntaxError, bomb errors, ...)
        message = str(exc)
        if isinstance(path, str | os.PathLike):  # a name with a newline would cut the reason short
            message = message.replace(str(path), printable(str(path)))
        raise UnreadableImage(f"{printable(rel)}: {first_line(message, type(exc).__name__)}") from exc


def _eight_bit(img: Image.Image) -> np.ndarray:
    """Pixels as uint8 grey, RGB or RGBA: 16-bit scaled down, palettes and CMYK converted, alpha kept."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        values = np.asarray(img, dtype=np.float32)
        if img.mode != "F":
            values = values / 257  # the 16-bit range 0..65535 onto 0..255
        return np.clip(np.round(values), 0, 255).astype(np.uint8)
    if img.has_transparency_data:
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img if img.mode in ("L", "RGB") else img.convert("RGB"))


def _formats() -> list[str]:
    """The PIL formats decoding tries: every one PIL can open except the refused ones."""
    Image.init()
    return [f for f in Image.OPEN if f not in _REFUSED_FORMATS]


def _holds_images(root: Path, rels: list[str]) -> bool:
    """Whether some file has an image's name or, failing that, an image's content (PIL identifies it)."""
    if any(os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS for rel in rels):
        return True
    return any(_identifies(root / rel) for rel in rels)


def _identifies(path: Path) -> bool:
    """Whether PIL recognises a regular file as an image from its header (no pixel is decoded)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with Image.open(path, formats=_formats()):
            return True
    except Exception:  # not an image, or unreadable: either way not evidence of images
        return False


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:
        return False


def file_stamp(path: Path) -> list:
    """Size and modification time of a file, of the link itself where it leads nowhere, or None when gone."""
    for look in (os.stat, os.lstat):
        try:
            info = look(path)
            return [info.st_size, info.st_mtime_ns]
        except OSError:
            continue
    return [None, None]


def _unreachable(path: Path, exc: OSError) -> str:
    """Why a listed file cannot be reached, in words."""
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop (it never reaches a file)"
    if exc.errno == errno.ENOENT and os.path.islink(path):
        try:
            return f"a dangling symbolic link (its target {printable(os.readlink(path))} does not exist)"
        except OSError:
            return "a dangling symbolic link"
    if exc.errno == errno.ENOENT:
        return "the file no longer exists"
    return exc.strerror or one_line(exc)


def _special_kind(mode: int) -> str:
    """What a file that is not a regular one is."""
    kinds = [(stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")]
    return next((name for test, name in kinds if test(mode)), "special file")


def _warn_left_out(root: Path, listing: Listing) -> None:
    """One warning line per kind of entry that is not an item, with how many and a few of their names."""
    where = printable(str(root))
    if hidden := _hidden(listing):
        warn(f"{where}: left out {hidden} (names starting with '.'; "
             f"{_examples(listing.hidden_files + [f + '/' for f in listing.hidden_folders])})")
    if listing.linked_folders:
        warn(f"{where}: did not follow {_count(len(listing.linked_folders), 'symbolic link')} to folders "
             f"({_examples(listing.linked_folders)}); the images behind them are not in the source "
             "(links to folders can loop): link or copy the files instead")
    if listing.unlisted:
        shown = _examples([f"{folder}: {why}" for folder, why in listing.unlisted])
        warn(f"{where}: could not list {_count(len(listing.unlisted), 'folder')} ({shown}); "
             "the files in them are not in the source")


def _hidden(listing: Listing) -> str:
    """How many hidden files and folders were left out, in words ("" when none)."""
    parts = [_count(len(names), noun) for names, noun in
             ((listing.hidden_files, "hidden file"), (listing.hidden_folders, "hidden folder")) if names]
    return " and ".join(parts)


def _examples(names: list[str], most: int = 3) -> str:
    """A few names, printable, then how many more."""
    shown = ", ".join(printable(n) for n in sorted(names)[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _unique(ids: list[str]) -> list[str]:
    """Ids made unique where escaping made two names alike (a name with a newline, another with a literal \\n)."""
    seen: set[str] = set()
    out = []
    for ident in ids:
        while ident in seen:
            ident += "~"
        seen.add(ident)
        out.append(ident)
    return out
