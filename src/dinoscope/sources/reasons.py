"""One-line reasons from exceptions, so every error message stays one line."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
