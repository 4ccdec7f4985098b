"""Crash points for the recovery tests: kill this process at a chosen atomic write, as a power cut would.

`DINOSCOPE_CRASH_AT="NAME[:before|:after]"` SIGKILLs the process at the first atomic write whose file name is
NAME: before the rename (the temporary file is written, the artifact is not) or after it. Unset (always, outside
tests/test_crash.py) it costs one dictionary lookup per write and does nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "DINOSCOPE_CRASH_AT"


def crash_point(path: Path, moment: str) -> None:
    """Die here when the crash point names this file and this moment ("before" or "after" the rename)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, when = spec.partition(":")
    if path.name == name and (when or "before") == moment:
        os.kill(os.getpid(), signal.SIGKILL)
