"""The one Rich console: status lines, warnings and progress bars go to stderr, results to stdout."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)


def say(stage: str, message: str) -> None:
    """One status line for a stage."""
    console.print(f"[bold cyan]{stage:>9}[/] {message}")


def warn(message: str) -> None:
    """A one-line warning that does not stop the run (the message is shown as written, never as markup)."""
    console.print(f"[bold yellow]  warning[/] {escape(message)}", soft_wrap=True)


def stdout() -> Console:
    """A console on stdout, for results a user may pipe (tables)."""
    return Console(highlight=False, soft_wrap=True)


def progress_bar(title: str, *, enabled: bool = True, fields: str | None = None, elapsed: bool = False) -> Progress:
    """A transient bar on the console: title, bar, done/total, an optional `fields` text (e.g.
    "{task.fields[rate]} img/s") and the time remaining (or elapsed); shown only on a terminal."""
    columns = [TextColumn(title), BarColumn(), MofNCompleteColumn()]
    if fields:
        columns.append(TextColumn(fields))
    columns.append(TimeElapsedColumn() if elapsed else TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not (enabled and console.is_terminal), transient=True)
