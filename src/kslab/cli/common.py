"""Options shared by every command that builds a machine, and small CLI helpers."""

from __future__ import annotations

import argparse
import sys

from ..manifest import boot_machine, read_manifest
from ..mm.config import MachineConfig, parse_topology
from ..mm.kernel import Kernel
from ..mm.page_alloc import MAX_ORDER
from .slub_machine import add_allocator_option, refuse_slub


def one_line(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    if isinstance(e, OSError) and e.filename:
        text = f"{e.filename}: {e.strerror}"
    return " ".join(text.split())


def plain_text(doc: str | None) -> str:
    """A docstring as --help shows it: reST markup (``code``, :func:`name`) as plain text."""
    import re  # noqa: PLC0415
    text = re.sub(r":(?:func|meth):`~?([^`]+)`", r"\1()", doc or "")
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def add_machine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("machine")
    g.add_argument("--cpus", type=int, default=1, metavar="N", help="number of CPUs (default 1)")
    g.add_argument("--nodes", type=int, default=1, metavar="M", help="NUMA nodes; CPUs split contiguously")
    g.add_argument("--topology", metavar="RANGES", help="CPU ranges per node, e.g. 0-1,2-3")
    g.add_argument("--mem", default="2G", metavar="SIZE", help="total memory, e.g. 2G (default), 64G")
    g.add_argument("--debug-slab", action="store_true", help="CONFIG_DEBUG_SLAB=y")
    g.add_argument("--init-on-alloc", action="store_true", help="init_on_alloc=1")
    g.add_argument("--init-on-free", action="store_true", help="init_on_free=1")
    g.add_argument("--freelist-hardened", action="store_true", help="CONFIG_SLAB_FREELIST_HARDENED=y")
    g.add_argument("--freelist-random", action="store_true", help="CONFIG_SLAB_FREELIST_RANDOM=y")
    g.add_argument("--random-seed", type=int, default=0, metavar="N",
                   help="seed of the model's get_random_int/long (runs repeat exactly for a seed; default 0)")
    g.add_argument("--slab-max-order", type=int, metavar="N",
                   help=f"slab_max_order=N (0..{MAX_ORDER - 1}; the kernel clamps other values into that range)")
    g.add_argument("--noaliencache", action="store_true", help="boot with noaliencache")
    g.add_argument("--slab-nomerge", action="store_true", help="boot with slab_nomerge")
    g.add_argument("--no-numa", action="store_true", help="a kernel built without CONFIG_NUMA (one node only)")
    g.add_argument("--caches", metavar="FILE", help="cache manifest: the kernel's kmem_cache_create calls")
    add_allocator_option(g)


def slab_max_order(value: int | None) -> int | None:
    """``slab_max_order=`` as slab_max_order_setup takes it: below 0 is 0, above MAX_ORDER - 1 is
    MAX_ORDER - 1 (said once on stderr, since the kernel says nothing)."""
    if value is None:
        return None
    clamped = min(max(value, 0), MAX_ORDER - 1)
    if clamped != value:
        sys.stderr.write(f"kslab: warning: --slab-max-order {value}: the kernel clamps slab_max_order to "
                         f"0..MAX_ORDER-1 ({MAX_ORDER - 1}): using {clamped}\n")
    return clamped


def check_topology(text: str | None) -> None:
    """A --topology that names a CPU twice is an error naming the CPU and its nodes."""
    if not text:
        return
    try:
        nodes = parse_topology(text)
    except ValueError:
        return  # MachineConfig.build words the syntax errors
    seen: dict[int, int] = {}
    for nid, cpus in enumerate(nodes):
        for cpu in cpus:
            if cpu in seen:
                where = f"both in node {nid}" if seen[cpu] == nid else f"in node {seen[cpu]} and in node {nid}"
                raise ValueError(f"--topology {text!r}: CPU {cpu} is in it twice ({where}): each CPU is on one node")
            seen[cpu] = nid


def machine_config(args: argparse.Namespace) -> MachineConfig:
    check_topology(args.topology)
    return MachineConfig.build(
        cpus=args.cpus, nodes=args.nodes, topology=args.topology, mem=args.mem,
        CONFIG_DEBUG_SLAB=args.debug_slab, init_on_alloc=args.init_on_alloc, init_on_free=args.init_on_free,
        CONFIG_SLAB_FREELIST_HARDENED=args.freelist_hardened, slab_max_order=slab_max_order(args.slab_max_order),
        noaliencache=args.noaliencache, slab_nomerge=args.slab_nomerge, CONFIG_NUMA=not args.no_numa,
        CONFIG_SLAB_FREELIST_RANDOM=args.freelist_random, random_seed=args.random_seed,
    )


def build_machine(args: argparse.Namespace) -> Kernel:
    refuse_slub(args, getattr(args, "command", None) or "")
    config = machine_config(args)
    manifest = read_manifest(args.caches, config) if args.caches else None
    return boot_machine(config, manifest, args.caches or "")


def machine_after(args: argparse.Namespace) -> Kernel:
    """The machine after boot, or after the replay of ``args.trace`` when one is given (the commands that
    show model state take the replay options of ``kslab replay``)."""
    from .replay import make_replayer, run_replay, use_bundled_trace, wants_bundled  # noqa: PLC0415
    if getattr(args, "from_replay", None):
        args.trace = args.from_replay
        if wants_bundled(args.trace):
            use_bundled_trace(args)
    if getattr(args, "trace", None) is None:
        given = [o for o, v in (("--start-slabinfo", getattr(args, "start_slabinfo", None)),
                                ("--sync-on", getattr(args, "sync_on", None)),
                                ("--action", getattr(args, "action", None)),
                                ("--snapshot-on", getattr(args, "snapshot_on", None)),
                                ("--ptr-map", getattr(args, "ptr_map", None))) if v]
        if given:
            raise ValueError(f"{', '.join(given)}: replay options need a trace (--from-replay TRACE)")
        return build_machine(args)
    rep = make_replayer(args)
    run_replay(rep, args)
    return rep.k
