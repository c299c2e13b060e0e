"""``--allocator slub``: the commands' SLUB machine (booted from a 6.12 cache log or manifest, or replayed)."""

from __future__ import annotations

import argparse
from enum import Enum
from pathlib import Path

from ..mm.errors import ConfigError
from ..mm.slub.machine import SlubKernel
from ..mm.slub.manifest import read_slub_manifest


class Allocator(Enum):
    """The allocator a machine runs (``--allocator``)."""

    SLAB = "slab"
    SLUB = "slub"


ALLOCATOR_CHOICES = tuple(a.value for a in Allocator)


def add_allocator_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--allocator", choices=ALLOCATOR_CHOICES, default=Allocator.SLAB.value,
                   help="slab: Linux 5.10's SLAB (default); slub: Linux 6.12's SLUB (--caches takes a 6.12 "
                        "caches.log or a SLUB manifest)")
    p.add_argument("--slab-debug", nargs="?", const="", default=None, metavar="FLAGS[,CACHE...]",
                   help="SLUB: boot with slab_debug=FLAGS (F sanity checks, Z red zones, P poison, U user tracking; "
                        "bare: all of them; ',CACHE' limits it to those caches, e.g. FZPU,kmalloc-64)")


def wants_slub(args: argparse.Namespace) -> bool:
    return getattr(args, "allocator", Allocator.SLAB.value) == Allocator.SLUB.value


def refuse_slub(args: argparse.Namespace, command: str) -> None:
    """A command that models only SLAB says so for ``--allocator slub``."""
    if not wants_slub(args) and getattr(args, "slab_debug", None) is not None:
        raise ConfigError("--slab-debug: a SLUB boot option (use --allocator slub; SLAB's debugging is --debug-slab)")
    if wants_slub(args):
        raise ConfigError(f"kslab {command}: --allocator slub is not supported by this command yet "
                          "(it is by slabinfo, buddyinfo, sysfs, replay, stats and explain)")


def build_slub_machine(args: argparse.Namespace) -> SlubKernel:
    """A SLUB machine of the command's machine options, with the caches of ``--caches`` created in order."""
    from .common import machine_config  # noqa: PLC0415
    config = machine_config(args)
    manifest = []
    if args.caches:
        path = args.caches
        manifest = read_slub_manifest(Path(path).read_text(encoding="utf-8").splitlines(), path)
    return SlubKernel(config, manifest, slub_cmdline(args))


def slub_cmdline(args: argparse.Namespace) -> str:
    """The SLUB boot options of the command line: ``slab_debug=`` from --slab-debug."""
    words = [getattr(args, "slub_cmdline", "") or ""]
    debug = getattr(args, "slab_debug", None)
    if debug is not None:
        if any(c.isspace() for c in debug):
            raise ValueError(f"--slab-debug {debug!r}: no spaces (blocks are separated by ';')")
        words.append(f"slab_debug={debug}" if debug else "slab_debug")
    return " ".join(w for w in words if w)


def slub_machine_after(args: argparse.Namespace) -> SlubKernel:
    """The SLUB machine after boot, or after the replay of ``--from-replay TRACE``."""
    trace = getattr(args, "from_replay", None) or getattr(args, "trace", None)
    if not trace:
        return build_slub_machine(args)
    from .replay_slub import run_slub_replay  # noqa: PLC0415
    return run_slub_replay(args, trace).k
