"""Counted repairs: every reader reports what it fixed, where, and how often.

Nothing is dropped or changed silently: a reader that changes its input records a
:class:`Repair` (file, line, kind, detail) in a :class:`RepairLog`.  The log keeps
exact counts per kind and a bounded number of examples per kind.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Repair:
    path: str
    line: int  # 1-based; 0 when not tied to a line
    kind: str
    detail: str = ""
    action: str = "repaired"  # repaired | masked | dropped | reported

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        return f"{self.where()}: {self.kind} ({self.action}) {self.detail}".rstrip()


@dataclass
class RepairLog:
    """Counts of repairs by kind plus up to ``max_examples`` examples of each kind."""

    max_examples: int = 20
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[Repair]] = field(default_factory=dict)
    fatal: list[Repair] = field(default_factory=list)

    def add(self, path: str, line: int, kind: str, detail: str = "", action: str = "repaired",
            count: int = 1) -> None:
        self.counts[kind] += count
        bucket = self.examples.setdefault(kind, [])
        if len(bucket) < self.max_examples:
            bucket.append(Repair(str(path), line, kind, detail, action))

    def add_fatal(self, path: str, line: int, kind: str, detail: str = "") -> None:
        """Record input that could not be recovered (the CLI exits non-zero on these)."""
        self.fatal.append(Repair(str(path), line, kind, detail, "unrecoverable"))
        self.counts[kind] += 1

    def merge(self, other: "RepairLog") -> None:
        self.counts.update(other.counts)
        for kind, items in other.examples.items():
            bucket = self.examples.setdefault(kind, [])
            bucket.extend(items[: max(0, self.max_examples - len(bucket))])
        self.fatal.extend(other.fatal)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:  # a log is truthy when something was repaired
        return self.total > 0

    def to_dict(self) -> dict:
        return {
            "counts": dict(sorted(self.counts.items())),
            "examples": {k: [str(r) for r in v] for k, v in sorted(self.examples.items())},
            "fatal": [str(r) for r in self.fatal],
        }
