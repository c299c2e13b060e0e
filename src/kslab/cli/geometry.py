"""kslab geometry: how a cache of a given size is laid out (order, objects per slab, placement)."""

from __future__ import annotations

import argparse
import json
import sys

from ..manifest import parse_flags
from ..mm.slab_def import SLAB_FLAG_NAMES, SLAB_FLAGS_PERMITTED
from .common import add_machine_options, build_machine

EXAMPLES = """examples:
  kslab geometry --size 200 --flags SLAB_HWCACHE_ALIGN
  kslab geometry --size 200 --ctor --debug-slab
  kslab geometry --size 3000 --slab-max-order 0 --json
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("geometry", help="lay out a cache: size, objects per slab, order, freelist placement",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_machine_options(p)
    p.add_argument("--size", type=int, required=True, help="object size in bytes")
    p.add_argument("--align", type=int, default=0, help="caller's alignment (default 0)")
    p.add_argument("--flags", default="0", help="hex or SLAB_* names joined by |")
    p.add_argument("--ctor", action="store_true", help="the cache has a constructor")
    p.add_argument("--name", default="kslab_geometry", help="cache name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def flag_names(flags: int) -> list[str]:
    """The SLAB_* and CFLGS_* names of the bits set in ``flags`` (the aliases SLAB_DESTROY_BY_RCU and
    SLAB_TEMPORARY left out), and the rest as hex."""
    names, rest = [], flags
    for name, bit in sorted(SLAB_FLAG_NAMES.items(), key=lambda kv: kv[1]):
        if name in ("SLAB_DESTROY_BY_RCU", "SLAB_TEMPORARY") or not flags & bit:
            continue
        names.append(name)
        rest &= ~bit
    if rest:
        names.append(hex(rest))
    return names


def as_text(key: str, v: object, c_nodes: list[int]) -> str:
    """One value of the text output in words, not as a Python value."""
    if key == "freelist_cache":
        return str(v) if v else "none (the freelist is not in a cache of its own)"
    if key == "free_limit":
        assert isinstance(v, list)
        return ", ".join(f"{x} (node {n})" for n, x in zip(c_nodes, v, strict=True)) or "-"
    if key == "flags":
        assert isinstance(v, str)
        names = flag_names(int(v, 16))
        return f"{v} ({' | '.join(names)})" if names else v
    return str(v)


def run(args: argparse.Namespace) -> int:
    if args.size <= 0:
        raise ValueError(f"--size {args.size}: must be a positive number of bytes")
    k = build_machine(args)
    k.boot_params.slab_nomerge = True  # show this cache's own geometry, not the cache it would merge into
    c = k.kmem_cache_create(args.name, args.size, args.align, parse_flags(args.flags), True if args.ctor else None)
    if c is None:
        refused = parse_flags(args.flags) & ~SLAB_FLAGS_PERMITTED
        why = f" (flags {' | '.join(flag_names(refused))} are outside SLAB_FLAGS_PERMITTED: EINVAL)" if refused else ""
        raise ValueError(f"{k.dmesg[-1] if k.dmesg else f'kmem_cache_create({args.name}) failed'}{why}")
    left = (4096 << c.gfporder) - c.num * c.size - (c.num if c.placement == "on-slab" else 0)
    info = {
        "name": c.name, "object_size": c.object_size, "size": c.size, "align": c.align, "flags": hex(c.flags),
        "num": c.num, "gfporder": c.gfporder, "pages": 1 << c.gfporder, "placement": c.placement,
        "freelist_cache": c.freelist_cache.name if c.freelist_cache else None, "left_over": left,
        "colour": c.colour, "colour_off": c.colour_off, "obj_offset": c.obj_offset,
        "limit": c.limit, "batchcount": c.batchcount, "shared": c.shared,
        "free_limit": [n.free_limit for n in c.node if n is not None],
        "flag_names": flag_names(c.flags),
    }
    nodes = [nid for nid, n in enumerate(c.node) if n is not None]
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for key, v in info.items():
            if key != "flag_names":
                sys.stdout.write(f"{key:15s} {as_text(key, v, nodes)}\n")
    return 0
