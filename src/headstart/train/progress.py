"""Progress bars and the end-of-run table, on stderr so that stdout stays clean for results."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextmanager
def silenced(silent: bool = True) -> Iterator[None]:
    """No messages on the console while inside (the scikit-learn estimators, unless asked to show progress)."""
    was, console.quiet = console.quiet, silent or console.quiet
    try:
        yield
    finally:
        console.quiet = was


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield advance(n); draws a bar when enabled and the terminal allows it."""
    if not enabled or not console.is_terminal:
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
