"""The ``slab_debug=`` boot option and how it reaches a cache's flags (mm/slub.c, 6.12).

``setup_slub_debug`` parses the option once into a :class:`SlubDebug` value; ``kmem_cache_flags`` applies
it to each cache created.  The option's syntax: blocks separated by ``;``, each ``FLAGS[,slab,slab*,...]``
with the letters F Z P U T A O and ``-``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flags import (
    DEBUG_DEFAULT_FLAGS,
    SLAB_CONSISTENCY_CHECKS,
    SLAB_FAILSLAB,
    SLAB_NO_USER_FLAGS,
    SLAB_NOLEAKTRACE,
    SLAB_POISON,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TRACE,
)

KERNEL_SYMBOLS_612 = ("parse_slub_debug_flags", "setup_slub_debug", "kmem_cache_flags")

_LETTERS = {"f": SLAB_CONSISTENCY_CHECKS, "z": SLAB_RED_ZONE, "p": SLAB_POISON, "u": SLAB_STORE_USER,
            "t": SLAB_TRACE, "a": SLAB_FAILSLAB}


@dataclass(frozen=True, slots=True)
class SlubDebug:
    """What setup_slub_debug leaves behind: ``slub_debug`` (global flags), ``slub_debug_string`` (the
    blocks with slab lists, or None), ``disable_higher_order_debug`` ('O'), the static key, and the
    letters it did not know (the kernel's "slab_debug option 'c' unknown" messages)."""

    slub_debug: int = 0
    slub_debug_string: str | None = None
    disable_higher_order_debug: bool = False
    slub_debug_enabled: bool = False
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Block:
    flags: int
    slabs: tuple[str, ...] | None  # None: no slab list
    higher_order_disable: bool
    unknown: tuple[str, ...]


def parse_slub_debug_flags(text: str) -> list[_Block]:
    """Split a slab_debug string into its blocks, each with its flags and slab list.

    Mirrors mm/slub.c:parse_slub_debug_flags() (v6.12), called over the whole string: empty blocks are
    skipped, a block starting with ``,`` means full debugging for the listed slabs.
    """
    blocks: list[_Block] = []
    for raw in text.split(";"):
        if not raw:
            continue
        opts, comma, rest = raw.partition(",")
        unknown: tuple[str, ...] = ()
        if not opts and comma:
            flags = DEBUG_DEFAULT_FLAGS
            higher = False
        else:
            flags = 0
            higher = False
            bad: list[str] = []
            for c in opts:
                lc = c.lower()
                if lc == "-":
                    flags = 0
                elif lc == "o":
                    higher = True
                elif lc in _LETTERS:
                    flags |= _LETTERS[lc]
                else:
                    bad.append(c)
            unknown = tuple(bad)
        slabs = tuple(rest.split(",")) if comma else None
        blocks.append(_Block(flags, slabs, higher, unknown))
    return blocks


def setup_slub_debug(option: str | None) -> SlubDebug:
    """The state ``slab_debug=option`` leaves (None: the option was not given at all).

    Mirrors mm/slub.c:setup_slub_debug() (v6.12) with CONFIG_SLUB_DEBUG_ON off.
    """
    if option is None:
        return SlubDebug()
    global_flags = DEBUG_DEFAULT_FLAGS
    debug_string: str | None = None
    higher = False
    unknown: list[str] = []
    if option:
        changed = listed = False
        for b in parse_slub_debug_flags(option):
            higher |= b.higher_order_disable
            unknown.extend(b.unknown)
            if b.slabs is None:
                global_flags = b.flags
                changed = True
            else:
                listed = True
        if listed:
            if not changed:
                global_flags = 0  # the default slub_debug without CONFIG_SLUB_DEBUG_ON
            debug_string = option
    return SlubDebug(global_flags, debug_string, higher, bool(global_flags or debug_string), tuple(unknown))


def _name_matches(name: str, pattern: str) -> bool:
    glob = pattern.find("*")
    if glob >= 0:
        return name.startswith(pattern[:glob])
    return name == pattern


def kmem_cache_flags(dbg: SlubDebug, flags: int, name: str) -> int:
    """A cache's flags with the slab_debug options that apply to it.

    Mirrors mm/slub.c:kmem_cache_flags() (v6.12): SLAB_NO_USER_FLAGS caches keep their own flags; the
    first block whose slab list names the cache (a ``*`` ends a prefix) gives its flags, otherwise the
    global ones (less SLAB_STORE_USER for SLAB_NOLEAKTRACE caches).
    """
    if flags & SLAB_NO_USER_FLAGS:
        return flags
    local = dbg.slub_debug
    if flags & SLAB_NOLEAKTRACE:
        local &= ~SLAB_STORE_USER
    if dbg.slub_debug_string is not None:
        for b in parse_slub_debug_flags(dbg.slub_debug_string):
            if b.slabs is None:
                continue
            for pattern in b.slabs:
                if pattern and _name_matches(name, pattern):
                    return flags | b.flags
    return flags | local
