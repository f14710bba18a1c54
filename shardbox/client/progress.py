"""Progress bars for transfers (rich): one line per file with bytes, rate and time left.

Drawn on stderr and only on a terminal, never with --json, so stdout stays parseable.
Uploads and downloads report through `Tracker`; `NullTracker` is the silent stand-in.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Tracker(Protocol):
    def phase(self, text: str, total: int | None = None, completed: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self, text: str) -> None: ...


class NullTracker:
    def phase(self, text: str, total: int | None = None, completed: int = 0) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self, text: str) -> None:
        pass


class RichTracker:
    def __init__(self, bars: Progress, name: str, total: int) -> None:
        self.bars = bars
        self.name = name
        self.task: TaskID = bars.add_task(self._label("waiting"), total=total or None, start=False)

    def _label(self, text: str) -> str:
        return f"{self.name} [dim]{text}[/dim]"

    def phase(self, text: str, total: int | None = None, completed: int = 0) -> None:
        # A fresh task per phase: the rate and time left must not count bytes an earlier
        # phase (hashing) or an earlier run (resume) accounted for.
        self.bars.remove_task(self.task)
        self.task = self.bars.add_task(self._label(text), total=total or None, completed=completed)

    def advance(self, n: int) -> None:
        self.bars.advance(self.task, n)

    def finish(self, text: str) -> None:
        task = self.bars.tasks[[t.id for t in self.bars.tasks].index(self.task)]
        self.bars.update(self.task, description=self._label(text), completed=task.total or 0)
        self.bars.stop_task(self.task)


class Bars(AbstractContextManager):
    """`with Bars(enabled) as bars: t = bars.track(name, size)`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.progress: Progress | None = None
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                transient=False)

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def track(self, name: str, total: int) -> Tracker:
        if self.progress is None:
            return NullTracker()
        return RichTracker(self.progress, name, total)
