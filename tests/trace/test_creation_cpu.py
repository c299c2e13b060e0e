"""A traced cache creation runs on the CPU the trace says (trace/replay: InternalPairing.traced_creation)."""

from __future__ import annotations

import io

from kslab.manifest import parse_manifest
from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer, ReplayOptions

MANIFEST = """\
foo 100 8 0x0 0
@init_late
@cpu_up 1
bar 200 8 0x0 0
baz 300 8 0x0 0
"""


def _creation(cpu: int, ts: int, ptr: int, name: str) -> str:
    return (f"        init-1       [{cpu:03d}] ....     {ts}: kmem_cache_alloc: "
            f"call_site=kmem_cache_create_usercopy+0x169/0x291 ptr={ptr:016x} bytes_req=152 bytes_alloc=192 "
            f"gfp_flags=GFP_KERNEL|__GFP_ZERO name={name}\n")


def test_the_struct_kmem_cache_comes_from_the_creating_cpus_array() -> None:
    text = (_creation(0, 1, 0xFFFF888012345000, "kmem_cache")
            + "        init-1       [000] ....     2: enable_cpucache <-kmem_cache_init_late\n"
            + _creation(1, 3, 0xFFFF8880123450C0, "kmem_cache")
            + _creation(1, 4, 0xFFFF888012345180, "kmem_cache"))
    rep = Replayer(MachineConfig.build(cpus=2), parse_manifest(MANIFEST.splitlines()), ReplayOptions())
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    rep.check()
    kc = rep.k.find_cache("kmem_cache")
    assert kc is not None
    bar, baz = rep.k.find_cache("bar"), rep.k.find_cache("baz")
    assert bar is not None and baz is not None
    # the kernel's kmem_cache_zalloc ran on CPU 1: it went through CPU 1's array (a refill), not CPU 0's
    assert kc.cpu_cache[1].touched
    assert rep.kmap[0xFFFF8880123450C0] == bar.addr and rep.kmap[0xFFFF888012345180] == baz.addr
    assert kc.paths.alloc_miss >= 1
