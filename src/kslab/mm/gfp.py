"""gfp_t: the kernel's allocation flags (include/linux/gfp.h, v5.10, x86_64, no LOCKDEP).

Names are the kernel's.  ``show_gfp_flags`` and ``parse_gfp_flags`` convert to and from the text
that ftrace prints (include/trace/events/mmflags.h).
"""

from __future__ import annotations

from typing import Final

___GFP_DMA: Final = 0x01
__GFP_DMA: Final = 0x01
__GFP_HIGHMEM: Final = 0x02
__GFP_DMA32: Final = 0x04
__GFP_MOVABLE: Final = 0x08
__GFP_RECLAIMABLE: Final = 0x10
__GFP_HIGH: Final = 0x20
__GFP_IO: Final = 0x40
__GFP_FS: Final = 0x80
__GFP_ZERO: Final = 0x100
__GFP_ATOMIC: Final = 0x200
__GFP_DIRECT_RECLAIM: Final = 0x400
__GFP_KSWAPD_RECLAIM: Final = 0x800
__GFP_WRITE: Final = 0x1000
__GFP_NOWARN: Final = 0x2000
__GFP_RETRY_MAYFAIL: Final = 0x4000
__GFP_NOFAIL: Final = 0x8000
__GFP_NORETRY: Final = 0x10000
__GFP_MEMALLOC: Final = 0x20000
__GFP_COMP: Final = 0x40000
__GFP_NOMEMALLOC: Final = 0x80000
__GFP_HARDWALL: Final = 0x100000
__GFP_THISNODE: Final = 0x200000
__GFP_ACCOUNT: Final = 0x400000
__GFP_BITS_SHIFT: Final = 23
__GFP_BITS_MASK: Final = (1 << __GFP_BITS_SHIFT) - 1

__GFP_RECLAIM: Final = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
GFP_ATOMIC: Final = __GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM
GFP_KERNEL: Final = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT: Final = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT: Final = __GFP_KSWAPD_RECLAIM
GFP_NOIO: Final = __GFP_RECLAIM
GFP_NOFS: Final = __GFP_RECLAIM | __GFP_IO
GFP_USER: Final = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA: Final = __GFP_DMA
GFP_DMA32: Final = __GFP_DMA32
GFP_HIGHUSER: Final = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE: Final = GFP_HIGHUSER | __GFP_MOVABLE
GFP_TRANSHUGE_LIGHT: Final = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM
GFP_TRANSHUGE: Final = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM

GFP_MOVABLE_MASK: Final = __GFP_RECLAIMABLE | __GFP_MOVABLE
GFP_MOVABLE_SHIFT: Final = 3
GFP_ZONEMASK: Final = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE
GFP_CONSTRAINT_MASK: Final = __GFP_HARDWALL | __GFP_THISNODE
GFP_RECLAIM_MASK: Final = (
    __GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_NOWARN | __GFP_RETRY_MAYFAIL
    | __GFP_NOFAIL | __GFP_NORETRY | __GFP_MEMALLOC | __GFP_NOMEMALLOC | __GFP_ATOMIC
)
# mm/internal.h: bits that must never reach the slab allocator's page requests
GFP_SLAB_BUG_MASK: Final = __GFP_DMA32 | __GFP_HIGHMEM | ~__GFP_BITS_MASK

# Order matters: composite masks first, as __def_gfpflag_names lists them.
GFP_FLAG_NAMES: Final[tuple[tuple[int, str], ...]] = (
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_NOFS, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_NOWAIT, "GFP_NOWAIT"),
    (GFP_DMA, "GFP_DMA"),
    (__GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (GFP_DMA32, "GFP_DMA32"),
    (__GFP_HIGH, "__GFP_HIGH"),
    (__GFP_ATOMIC, "__GFP_ATOMIC"),
    (__GFP_IO, "__GFP_IO"),
    (__GFP_FS, "__GFP_FS"),
    (__GFP_NOWARN, "__GFP_NOWARN"),
    (__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (__GFP_NOFAIL, "__GFP_NOFAIL"),
    (__GFP_NORETRY, "__GFP_NORETRY"),
    (__GFP_COMP, "__GFP_COMP"),
    (__GFP_ZERO, "__GFP_ZERO"),
    (__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (__GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (__GFP_HARDWALL, "__GFP_HARDWALL"),
    (__GFP_THISNODE, "__GFP_THISNODE"),
    (__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (__GFP_MOVABLE, "__GFP_MOVABLE"),
    (__GFP_ACCOUNT, "__GFP_ACCOUNT"),
    (__GFP_WRITE, "__GFP_WRITE"),
    (__GFP_RECLAIM, "__GFP_RECLAIM"),
    (__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
)

# Every name accepted by parse_gfp_flags: the kernel's, plus spellings of older kernels' traces
# (3.x printed GFP_ZERO, GFP_NOWARN, ... without the leading underscores) and GFP_NOFAIL style.
GFP_BY_NAME: Final[dict[str, int]] = {name: value for value, name in GFP_FLAG_NAMES}
GFP_BY_NAME.update({
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_KERNEL": GFP_KERNEL,
    "__GFP_DMA": __GFP_DMA,
    "__GFP_DMA32": __GFP_DMA32,
    "GFP_HIGHMEM": __GFP_HIGHMEM,
    "__GFP_NOLOCKDEP": 0x800000,
    "__GFP_OTHER_NODE": 0,  # 3.x-4.x flag, gone in 5.10: accepted, no effect
    "__GFP_COLD": 0,
    "__GFP_NOTRACK": 0,
    "__GFP_WAIT": __GFP_DIRECT_RECLAIM,
})
for _value, _name in GFP_FLAG_NAMES:
    if _name.startswith("__GFP_"):
        GFP_BY_NAME.setdefault(_name[2:], _value)  # 3.x style: GFP_ZERO, GFP_NOWARN, ...
GFP_BY_NAME.update({"GFP_WAIT": __GFP_DIRECT_RECLAIM, "GFP_NOTRACK": 0, "GFP_COLD": 0,
                    "GFP_RECLAIMABLE": __GFP_RECLAIMABLE, "GFP_THISNODE": __GFP_THISNODE})


def show_gfp_flags(flags: int) -> str:
    """Render flags as ftrace does (mirrors show_gfp_flags() / __print_flags())."""
    if not flags:
        return "none"
    names = []
    for mask, name in GFP_FLAG_NAMES:
        if mask and flags & mask == mask:
            names.append(name)
            flags &= ~mask
    if flags:
        names.append(hex(flags))
    return "|".join(names)


def parse_gfp_flags(text: str) -> int:
    """Parse an ftrace gfp_flags field (``GFP_KERNEL|__GFP_ZERO``, ``none``, ``0x...``).

    Raises ValueError naming the unknown flag.
    """
    if text in ("none", "0", ""):
        return 0
    value = 0
    for part in text.split("|"):
        v = GFP_BY_NAME.get(part)
        if v is None:
            try:
                v = int(part, 16) if part.startswith("0x") else int(part)
            except ValueError:
                raise ValueError(f"unknown gfp flag {part!r}") from None
        value |= v
    return value


def gfp_zone(flags: int) -> int:
    """Highest zone index the request may use: 0 DMA, 1 DMA32, 2 Normal (mirrors gfp_zone())."""
    if flags & __GFP_DMA:
        return 0
    if flags & __GFP_DMA32:
        return 1
    return 2


def gfp_migratetype(flags: int) -> int:
    """Migrate type of a request (mirrors gfp_migratetype()): 0 unmovable, 1 movable, 2 reclaimable."""
    return (flags & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT


def gfpflags_allow_blocking(flags: int) -> bool:
    return bool(flags & __GFP_DIRECT_RECLAIM)
