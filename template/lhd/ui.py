"""Terminal output: one line per step, spinners for waits."""

from __future__ import annotations

import functools


@functools.cache
def console():
    from rich.console import Console

    return Console(highlight=False)


def step(message: str) -> None:
    console().print(f"[bold cyan]==>[/] {message}")


def done(message: str) -> None:
    console().print(f"[bold green]✔[/] {message}")


def warn(message: str) -> None:
    console().print(f"[bold yellow]![/] {message}", soft_wrap=True)


@functools.cache
def error_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    error_console().print(f"[bold red]✘[/] {message}", soft_wrap=True)


def status(message: str):
    """Return a context manager that shows a spinner while it is open."""
    return console().status(message, spinner="dots")
