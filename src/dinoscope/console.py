"""The shared Rich console: status lines and warnings go to stderr, results to stdout."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)


def say(stage: str, message: str) -> None:
    """One status line for a stage."""
    console.print(f"[bold cyan]{stage:>9}[/] {message}")


def warn(message: str) -> None:
    """A one-line warning that does not stop the run."""
    console.print(f"[bold yellow]  warning[/] {message}", soft_wrap=True)


def stdout():
    """A console on stdout, for results a user may pipe (tables)."""
    return Console(highlight=False, soft_wrap=True)
