"""Which model object stands for which kernel object: the pointer maps, the page -> cache map, and the
one writer of the ``--ptr-map`` CSV."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from ...mm.slab_def import KmemCache


class PointerMap:
    """The kernel pointer <-> model pointer maps of a replay, and its ``--ptr-map`` file.

    ``kmap``: kernel object pointer -> model pointer; ``kcache``: kernel pointer -> the model's cache (for
    frees); ``kpage_cache``: kernel pfn of a slab page -> cache; ``internal_rev``: model pointer of one of
    the model's own structures -> the kernel pointer paired with it.  ``evno`` is the number of the event
    being replayed (the CSV's first column)."""

    HEADER = "event,kernel_ptr,model_ptr,kind,cache\n"

    def __init__(self, path: str | None) -> None:
        self.kmap: dict[int, int] = {}
        self.kcache: dict[int, KmemCache] = {}
        self.kpage_cache: dict[int, KmemCache] = {}
        self.internal_rev: dict[int, int] = {}
        self.evno = 0
        self.out: IO[str] | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self.out.write(self.HEADER)

    def write(self, kptr: int, mptr: int, kind: str, cachep: KmemCache | None) -> None:
        """One row of the CSV (when there is one): the kernel's object ``kptr`` is the model's ``mptr``."""
        if self.out is not None:
            self.out.write(f"{self.evno},{kptr:x},{mptr:x},{kind},{cachep.name if cachep else ''}\n")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
