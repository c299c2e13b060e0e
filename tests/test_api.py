"""The library façade: readable reprs and machine state as plain data."""

from __future__ import annotations

import json

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel


def test_snapshot_is_plain_json_data() -> None:
    k = Kernel(MachineConfig.build(cpus=2))
    t = k.kmem_cache_create("t100", 100, 0, 0, True)  # a ctor: never merged
    assert t is not None
    p = k.kmem_cache_alloc(t, cpu=1)
    snap = k.snapshot()
    json.dumps(snap)  # nothing but plain data
    rows = {c["name"]: c for c in snap["caches"]}
    tc = rows["t100"]
    assert tc["cpu_avail"] == [0, 15]  # the first refill of an untouched array takes 16 objects
    assert tc["paths"]["alloc_miss"] == 1 and tc["stats"]["allocmiss"] == 1 and tc["stats"]["grown"] == 1
    assert tc["nodes"][0]["partial"] == 1 and tc["active_objs"] == 16
    assert snap["machine"]["cpus"] == 2 and snap["machine"]["online_cpus"] == [0, 1]
    k.kmem_cache_free(t, p, cpu=1)


def test_reprs_are_readable() -> None:
    k = Kernel(MachineConfig.build(cpus=1))
    c = k.find_cache("kmalloc-64")
    assert repr(c).startswith("<KmemCache 'kmalloc-64' object_size=64 size=64 num=64")
    assert repr(k).startswith("<Kernel cpus=1 nodes=1")
    assert "avail=0" in repr(c.cpu_cache[0])
