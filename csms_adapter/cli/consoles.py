"""Consoles for the CLI's tables and trees. Through a pipe or into a file there is no window to fit, so rich's
default 80 columns would cut values short ("charg…"): such output gets a wide console and never an ellipsis."""

from __future__ import annotations

from typing import Any

from rich.console import Console

PIPE_WIDTH = 220


def make_console(*, stderr: bool = False, **options: Any) -> Console:
    console = Console(stderr=stderr, **options)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=max(console.width, PIPE_WIDTH), **options)
