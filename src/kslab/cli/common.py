"""Options shared by every command that builds a machine, and small CLI helpers."""

from __future__ import annotations

import argparse

from ..manifest import boot_machine, read_manifest
from ..mm.config import MachineConfig
from ..mm.kernel import Kernel


def one_line(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    if isinstance(e, OSError) and e.filename:
        text = f"{e.filename}: {e.strerror}"
    return " ".join(text.split())


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
    g.add_argument("--slab-max-order", type=int, metavar="N", help="slab_max_order=N (0..10)")
    g.add_argument("--noaliencache", action="store_true", help="boot with noaliencache")
    g.add_argument("--slab-nomerge", action="store_true", help="boot with slab_nomerge")
    g.add_argument("--no-numa", action="store_true", help="a kernel built without CONFIG_NUMA (one node only)")
    g.add_argument("--caches", metavar="FILE", help="cache manifest: the kernel's kmem_cache_create calls")


def machine_config(args: argparse.Namespace) -> MachineConfig:
    return MachineConfig.build(
        cpus=args.cpus, nodes=args.nodes, topology=args.topology, mem=args.mem,
        CONFIG_DEBUG_SLAB=args.debug_slab, init_on_alloc=args.init_on_alloc, init_on_free=args.init_on_free,
        CONFIG_SLAB_FREELIST_HARDENED=args.freelist_hardened, slab_max_order=args.slab_max_order,
        noaliencache=args.noaliencache, slab_nomerge=args.slab_nomerge, CONFIG_NUMA=not args.no_numa,
    )


def build_machine(args: argparse.Namespace) -> Kernel:
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
