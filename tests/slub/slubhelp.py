"""Helpers for the SLUB tests: a freshly booted SLUB and the copied 6.12 captures (tests/slub/data)."""

from __future__ import annotations

import lzma
from pathlib import Path

from kslab.mm.slub.init import kmem_cache_init
from kslab.mm.slub.slub_def import Slub, SlubConfig

DATA = Path(__file__).resolve().parent / "data"


def read_data(name: str) -> list[str]:
    """Lines of a copied capture file (xz-compressed or not)."""
    path = DATA / name
    if path.suffix == ".xz":
        with lzma.open(path, "rt", encoding="utf-8") as f:
            return f.read().splitlines()
    return path.read_text(encoding="utf-8").splitlines()


def boot(cpus: int = 1, nodes: int = 1, **options: object) -> Slub:
    """kmem_cache_init on a machine of ``cpus`` CPUs and ``nodes`` nodes."""
    return kmem_cache_init(SlubConfig(nr_cpu_ids=cpus, num_present_cpus=cpus, nr_node_ids=nodes,
                                      **options))  # type: ignore[arg-type]
