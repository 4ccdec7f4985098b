"""The CLI's setting options, derived from `config.Settings`: every setting of the sections a command reads is
an option, with its type, help and default taken from the setting, so no command can miss or misname a flag.

`settings_command(app, "source", "model", ...)` registers a function as a Typer command with one option per
setting of those sections (grouped in help panels by section, and per map); the function gets the given
options as `**flags` (flat names, see `config.FLAGS`), the ones not given as None.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from .config import FLAGS, field_info
from .maps import MAPS

PANELS = {"source": "Source", "model": "Model", "neighbors": "Neighbours (the shared kNN graph)", "maps": "Maps",
          "metrics": "Metrics", "analysis": "Analysis", "seed": "Run"}


def _names() -> dict[str, list[str]]:
    """Dotted setting path → its flat names, the primary (the setting's own) first, then short aliases."""
    out: dict[str, list[str]] = {}
    for flat, dotted in FLAGS.items():
        out.setdefault(dotted, []).append(flat)
    return out


NAMES = _names()


def _choices(annotation: Any) -> list[str]:
    """The literal values an annotation admits (for the help text)."""
    if typing.get_origin(annotation) is Literal:
        return [str(v) for v in typing.get_args(annotation)]
    return [c for arg in typing.get_args(annotation) for c in _choices(arg)]


def _cli_type(annotation: Any) -> type:
    """What Typer parses the option as; pydantic then checks it against the setting's own type."""
    args = set(typing.get_args(annotation)) - {type(None)} if typing.get_origin(annotation) else {annotation}
    if len(args) == 1 and (kind := next(iter(args))) in (bool, int, float, Path):
        return kind
    return str


def _help(dotted: str) -> str:
    """The setting's description, its choices and its default."""
    info = field_info(dotted)
    default = info.get_default(call_default_factory=True)
    default = ",".join(default) if isinstance(default, list) else "none" if default is None else default
    parts = [info.description or ""]
    if choices := _choices(info.annotation):
        parts.append(f"({' | '.join(choices)})")
    if info.annotation is not bool:
        parts.append(f"[default: {default}]")
    return escape(" ".join(p for p in parts if p))  # help is Rich markup: "[default: 10]" must show as written


def _panel(dotted: str) -> str:
    """The help panel of a setting: its section, or its map for a map's own settings."""
    parts = dotted.split(".")
    if parts[0] == "maps" and len(parts) == 3:
        return f"Map: {MAPS[parts[1]].title} ({parts[1]})"
    return PANELS[parts[0]]


def setting_paths(*sections: str) -> list[str]:
    """Dotted paths of every setting in `sections` ("maps" includes each map's own settings), in FLAGS order."""
    return [dotted for dotted in NAMES if dotted.split(".")[0] in sections]


def _parameter(dotted: str, bare: bool) -> inspect.Parameter:
    """One keyword parameter of a command for the setting at `dotted` (`bare`: also spelled by its field name)."""
    flat = NAMES[dotted]
    spellings = [f"--{n.replace('_', '-')}" for n in flat]
    leaf = f"--{dotted.split('.')[-1].replace('_', '-')}"
    if bare and leaf not in spellings:
        spellings.append(leaf)
    annotation = field_info(dotted).annotation
    if annotation is not bool and _cli_type(annotation) is bool:  # bool | None: on, off, or left to the default
        spellings = [f"{s}/--no-{s[2:]}" for s in spellings]
    option = typer.Option(*spellings, help=_help(dotted), show_default=False, rich_help_panel=_panel(dotted))
    return inspect.Parameter(flat[0], inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[_cli_type(field_info(dotted).annotation) | None, option])


def settings_command(app: typer.Typer, *sections: str, name: str | None = None) -> Callable:
    """Register the decorated function as a command taking every setting of `sections` as an option; they reach
    it as `**flags` (flat names). A command of one section also accepts its settings' bare names (--k)."""

    def register(fn: Callable) -> Callable:
        own = inspect.signature(fn, eval_str=True)
        fixed = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        generated = [_parameter(d, bare=len(sections) == 1) for d in setting_paths(*sections)]
        keys = {p.name for p in generated}

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            flags = {k: kwargs.pop(k) for k in list(kwargs) if k in keys}
            return fn(**kwargs, **flags)

        params = fixed + generated
        command.__signature__ = own.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # Typer must read the signature above, not the function's own
        return app.command(name)(command)

    return register
