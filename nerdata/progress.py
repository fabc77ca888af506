"""Progress reporting without drawing: the library calls a callback, the CLI draws bars.

A callback is ``callback(done: int, total: int | None, desc: str)``; ``None`` means silent.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

ProgressCallback = Callable[[int, "int | None", str], None]
T = TypeVar("T")


def track(items: Iterable[T], callback: ProgressCallback | None, total: int | None = None,
          desc: str = "", every: int = 1) -> Iterator[T]:
    """Yield ``items``, reporting progress to ``callback`` every ``every`` items."""
    if callback is None:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    done = 0
    callback(0, total, desc)
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            callback(done, total, desc)
    if done % every:
        callback(done, total, desc)
