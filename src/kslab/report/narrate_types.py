"""The types (and the English plural) shared by the narration templates (:mod:`kslab.report.narrate_en`,
:mod:`kslab.report.narrate_zh`) and :mod:`kslab.report.narrate`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Template", "Values", "plural"]


class Values(dict[str, Any]):
    """Values with derived fields, for str.format_map."""

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)



#: A step's template: a ``str.format_map`` text, or a function of the step's values (with the derived
#: fields of ``narrate._derive``).
Template = str | Callable[[Values], str]


def plural(count: int, word: str) -> str:
    """``1 CPU``, ``2 CPUs``, ``1 page``, ``4 slabs`` (English only)."""
    return f"{count} {word}" + ("" if count == 1 else "s")
