"""One-line reasons from exceptions, so every error message stays one line."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    return first_line(str(exc), type(exc).__name__)


def first_line(text: str, fallback: str) -> str:
    """The first line of `text`, or `fallback` when it is blank."""
    lines = text.strip().splitlines()
    return lines[0] if lines else fallback


def printable(text: str) -> str:
    """`text` safe to store as UTF-8 and to print on one line: a file name's undecodable bytes become \\xNN and
    control characters (a newline in a name, say) their escapes; printable text is returned as it is."""
    if text.isprintable():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")  # a name's undecodable bytes, as os.listdir gave them
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        raw = text.encode("utf-8", "backslashreplace")
    decoded = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in decoded)
