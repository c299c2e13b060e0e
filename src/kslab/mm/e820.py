"""The physical memory map of a qemu x86_64 "pc" (i440fx) machine with SeaBIOS, as in the oracle captures:
the e820 usable RAM of every NUMA node, and the boot reservations and zone bounds the buddy allocator
(:mod:`kslab.mm.page_alloc`) builds its zones from.

Mirrors what qemu's ``pc_memory_init``/SRAT and the firmware's e820 table give the kernel's
``e820__memblock_setup``.

Physical layout (a qemu x86_64 "pc" machine with SeaBIOS, as in the oracle captures):

* RAM below 4 GiB is all of it when ``mem`` < 3.5 GiB; otherwise 3 GiB stay below and the rest
  is mapped from 4 GiB (the PCI hole), as qemu's i440fx board does.
* e820: pfn 0 is reserved by the kernel, 0x9fc00-0xfffff is not RAM (pfns 159..255), and the top
  128 KiB below the end of low RAM are reserved by the firmware (32 pages).
* Node *i* gets the i-th ``mem/N`` slice of RAM in address order (qemu's SRAT).
* Zones: DMA (pfn < 4096), DMA32 (< 4 GiB), Normal; a zone exists where the node has memory.
* Boot reservations: the first 64 KiB (reserve_low) and the 24 KiB real-mode trampoline just
  below 0x9f000 are present but not managed, which reproduces the real DMA zone exactly
  (spanned 4095, present 3998, managed 3977, buddyinfo ``1 0 0 1 2 1 1 0 1 1 3``).  Nothing else
  is reserved: the kernel image, mem_map, initrd and swiotlb of a real boot are not modelled, so
  DMA32/Normal have managed == present and start completely free.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .config import PAGE_SHIFT, MachineConfig

__all__ = [
    "BOOT_RESERVED", "E820_LOW_HOLES", "FIRMWARE_TOP_RESERVED_PAGES", "QEMU_BELOW_4G_GIGALIGNED",
    "QEMU_LOWMEM_LIMIT", "ZONE_BOUNDS", "clip_ranges", "qemu_node_ranges", "subtract_ranges",
]

# qemu "pc" (i440fx) + SeaBIOS physical memory map, in pfns
QEMU_LOWMEM_LIMIT: Final = 0xE0000000      # ram_size >= this: only 3 GiB stay below 4 GiB
QEMU_BELOW_4G_GIGALIGNED: Final = 0xC0000000
FIRMWARE_TOP_RESERVED_PAGES: Final = 32    # e820 reserves the last 128 KiB of low RAM
E820_LOW_HOLES: Final = ((0, 1), (159, 256))  # pfn 0 (kernel), 0x9fc00..0xfffff (EBDA, VGA, ROM)
BOOT_RESERVED: Final = ((1, 16), (153, 159))  # reserve_low (64 KiB) and the real-mode trampoline
ZONE_BOUNDS: Final = ((0, 1 << (24 - PAGE_SHIFT)), (1 << (24 - PAGE_SHIFT), 1 << (32 - PAGE_SHIFT)),
                      (1 << (32 - PAGE_SHIFT), 1 << 52))


def subtract_ranges(ranges: Iterable[tuple[int, int]], holes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` (half-open pfn ranges) without the parts inside ``holes`` (memblock_remove on a list)."""
    out = list(ranges)
    for hs, he in holes:
        nxt: list[tuple[int, int]] = []
        for s, e in out:
            if he <= s or hs >= e:
                nxt.append((s, e))
                continue
            if s < hs:
                nxt.append((s, hs))
            if he < e:
                nxt.append((he, e))
        out = nxt
    return out


def clip_ranges(ranges: Iterable[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of ``ranges`` inside ``[lo, hi)``."""
    return [(max(s, lo), min(e, hi)) for s, e in ranges if max(s, lo) < min(e, hi)]


def qemu_node_ranges(config: MachineConfig) -> list[list[tuple[int, int]]]:
    """Present pfn ranges of every node of a qemu x86_64 "pc" machine (e820 usable RAM per node)."""
    mem = config.mem
    below = mem if mem < QEMU_LOWMEM_LIMIT else QEMU_BELOW_4G_GIGALIGNED
    usable = subtract_ranges([(0, (below >> PAGE_SHIFT) - FIRMWARE_TOP_RESERVED_PAGES)], E820_LOW_HOLES)
    if mem > below:
        usable.append((1 << (32 - PAGE_SHIFT), (1 << (32 - PAGE_SHIFT)) + ((mem - below) >> PAGE_SHIFT)))
    per = config.mem_per_node
    nodes: list[list[tuple[int, int]]] = []
    for nid in range(config.nr_nodes):
        lo, hi = nid * per, (nid + 1) * per
        phys: list[tuple[int, int]] = []
        if lo < below:
            phys.append((lo, min(hi, below)))
        if hi > below:
            shift = (1 << 32) - below
            phys.append((max(lo, below) + shift, hi + shift))
        ranges: list[tuple[int, int]] = []
        for s, e in phys:
            for us, ue in usable:
                ranges.extend(clip_ranges([(us, ue)], s >> PAGE_SHIFT, e >> PAGE_SHIFT))
        nodes.append(sorted(ranges))
    return nodes
