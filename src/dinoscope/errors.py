"""The one error type users see: a one-line message that says what to do (CLI exit status 2)."""

from __future__ import annotations


class DinoscopeError(Exception):
    """Bad input or an impossible request; its message is one line and names the fix."""
