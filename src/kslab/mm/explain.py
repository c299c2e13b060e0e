"""Recording what the allocator did and why, for narration.

When ``k.explain`` is an :class:`Explain`, every instrumented kernel function appends a
:class:`Step`: the function entered, a key naming the decision taken, and the values that decided
it.  The core only records; :mod:`kslab.report.narrate` renders steps in English or Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    """One decision: ``func`` is the kernel function, ``key`` the branch, ``values`` the evidence."""

    func: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)


class Explain:
    """A sink for :class:`Step` records (assign to ``Kernel.explain`` to switch narration on)."""

    __slots__ = ("steps", "limit")

    def __init__(self, limit: int = 100_000) -> None:
        self.steps: list[Step] = []
        self.limit = limit

    def step(self, func: str, key: str, **values: Any) -> None:
        if len(self.steps) < self.limit:
            self.steps.append(Step(func, key, values))

    def clear(self) -> None:
        self.steps.clear()

    def __len__(self) -> int:
        return len(self.steps)
