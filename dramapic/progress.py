"""Progress reporting through a hook object, so the library itself never prints."""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    """Receives progress of long stages. ``total`` and ``completed`` are in the stage's own unit."""

    def __call__(self, stage: str, completed: float, total: float) -> None: ...


def silent_hook(stage: str, completed: float, total: float) -> None:
    """The default hook: reports nothing."""
