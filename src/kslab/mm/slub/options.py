"""SLUB's boot options on a kernel command line (the __setup handlers of mm/slub.c and mm/slab_common.c, 6.12).

``slab_min_order=``, ``slab_max_order=``, ``slab_min_objects=``, ``slab_debug[=...]``, ``slab_nomerge`` and
``slab_merge``, and their older ``slub_`` spellings, applied in command-line order as the kernel does.
"""

from __future__ import annotations

from dataclasses import replace

from .slub_def import MAX_PAGE_ORDER, SlubConfig

KERNEL_SYMBOLS_612 = ("setup_slub_min_order", "setup_slub_max_order", "setup_slub_min_objects",
                      "setup_slab_nomerge", "setup_slab_merge")


def _number(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def setup_slub_min_order(min_order: int, max_order: int, value: int) -> tuple[int, int]:
    """slab_min_order=N: a larger minimum raises the maximum."""
    return value, max(max_order, value)


def setup_slub_max_order(min_order: int, max_order: int, value: int) -> tuple[int, int]:
    """slab_max_order=N, at most MAX_PAGE_ORDER: a smaller maximum lowers the minimum."""
    value = min(value, MAX_PAGE_ORDER)
    return min(min_order, value), value


def setup_slub_min_objects(value: int) -> int:
    """slab_min_objects=N."""
    return value


def setup_slab_nomerge() -> bool:
    """slab_nomerge: no cache merging."""
    return True


def setup_slab_merge() -> bool:
    """slab_merge: cache merging (the default with CONFIG_SLAB_MERGE_DEFAULT)."""
    return False


def apply_cmdline(cfg: SlubConfig, cmdline: str) -> SlubConfig:
    """``cfg`` with the SLUB options of a kernel command line; other words are not SLUB's and stay out."""
    min_order, max_order = cfg.slub_min_order, cfg.slub_max_order
    min_objects, debug, nomerge = cfg.slub_min_objects, cfg.slab_debug, cfg.slab_nomerge
    for word in cmdline.split():
        key, eq, value = word.partition("=")
        name = key.replace("slub_", "slab_", 1) if key.startswith("slub_") else key
        n = _number(value) if eq else None
        if name == "slab_min_order" and n is not None and n >= 0:
            min_order, max_order = setup_slub_min_order(min_order, max_order, n)
        elif name == "slab_max_order" and n is not None and n >= 0:
            min_order, max_order = setup_slub_max_order(min_order, max_order, n)
        elif name == "slab_min_objects" and n is not None and n >= 0:
            min_objects = setup_slub_min_objects(n)
        elif name == "slab_debug":
            debug = value
        elif name == "slab_nomerge" and not eq:
            nomerge = setup_slab_nomerge()
        elif name == "slab_merge" and not eq:
            nomerge = setup_slab_merge()
    return replace(cfg, slub_min_order=min_order, slub_max_order=max_order, slub_min_objects=min_objects,
                   slab_debug=debug, slab_nomerge=nomerge)
