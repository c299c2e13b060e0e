"""Small helpers shared by the tests/mm suites (imported as a plain module: pytest puts tests/mm on sys.path).

Nothing here computes an expected value: helpers only *observe* the model (parse /proc/slabinfo,
locate an object in its slab) so that tests can compare with numbers worked out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab_def import KmemCache


def boot(cpus: int = 1, nodes: int = 1, **options: object) -> Kernel:
    """A fully booted machine."""
    return Kernel(MachineConfig.build(cpus=cpus, nodes=nodes, **options))


@dataclass(frozen=True)
class Line:
    """One parsed /proc/slabinfo line (the columns of spec §8.2)."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    limit: int
    batchcount: int
    sharedfactor: int
    active_slabs: int
    num_slabs: int
    sharedavail: int
    stats: tuple[int, ...] = ()

    @property
    def slabdata(self) -> tuple[int, int, int, int, int]:
        """active_objs/num_objs/active_slabs/num_slabs/sharedavail, the spec's §12.3 columns."""
        return (self.active_objs, self.num_objs, self.active_slabs, self.num_slabs, self.sharedavail)


def parse_line(text: str) -> Line:
    parts = text.split()
    name = parts[0]
    # name a b c d e : tunables l b s : slabdata x y z [: globalstat ... : cpustat ...]
    assert parts[6] == ":" and parts[7] == "tunables", text
    assert parts[11] == ":" and parts[12] == "slabdata", text
    nums = [int(x) for x in parts[1:6]]
    tun = [int(x) for x in parts[8:11]]
    sd = [int(x) for x in parts[13:16]]
    stats: tuple[int, ...] = ()
    if len(parts) > 16:
        assert parts[16:18] == [":", "globalstat"], text
        g = [int(x) for x in parts[18:27]]
        assert parts[27:29] == [":", "cpustat"], text
        c = [int(x) for x in parts[29:33]]
        stats = tuple(g + c)
    return Line(name, *nums, *tun, *sd, stats)  # type: ignore[arg-type]


def slabinfo_lines(k: Kernel) -> list[Line]:
    text = k.slabinfo()
    rows = text.splitlines()
    assert rows[0].startswith("slabinfo - version: 2.1")
    assert rows[1].startswith("# name")
    return [parse_line(r) for r in rows[2:]]


def line(k: Kernel, name: str) -> Line:
    """The first (newest) /proc/slabinfo line with this name."""
    for ln in slabinfo_lines(k):
        if ln.name == name:
            return ln
    raise KeyError(name)


def cols(k: Kernel, name: str) -> tuple[int, int, int, int, int]:
    return line(k, name).slabdata


def locate(k: Kernel, cachep: KmemCache, objp: int) -> tuple[object, int]:
    """(head page, object index) of a non-debug object pointer."""
    page = k.page_of(objp)
    assert page is not None, hex(objp)
    off = objp - page.s_mem - cachep.obj_offset
    assert off % cachep.size == 0, (hex(objp), cachep.size)
    return page, off // cachep.size


def ac(cachep: KmemCache, cpu: int) -> list[int]:
    return cachep.cpu_cache[cpu].entry


def node(cachep: KmemCache, nid: int = 0):
    n = cachep.node[nid]
    assert n is not None
    return n
