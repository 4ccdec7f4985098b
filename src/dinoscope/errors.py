"""The one error type users see: a one-line message that says what to do (CLI exit status 2).

It is a ValueError, as scikit-learn's own parameter errors are, so code written against estimators catches both.
"""

from __future__ import annotations


class DinoscopeError(ValueError):
    """Bad input or an impossible request; its message is one line and names the fix."""
