"""The machine and the kernel options that change SLAB's behaviour.

A :class:`MachineConfig` is a frozen value: CPUs grouped into NUMA nodes, memory per node, and the
boot/build options named after the kernel's (``CONFIG_DEBUG_SLAB``, ``init_on_free=``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ConfigError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

#: --cpus (and CPU numbers in --topology) above this are refused.
MAX_CPUS = 256

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGTkmgt]?)(i?[Bb])?\s*$")


def parse_size(text: str) -> int:
    """Parse ``2G``, ``512M``, ``1048576`` (binary units) into bytes."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ConfigError(f"bad memory size {text!r}: expected a number with an optional K/M/G/T suffix, e.g. 2G")
    n = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]
    return n


def size_text(n: int) -> str:
    """``2G``, ``96M``, ``1536K`` or the byte count: the largest binary unit that divides ``n``."""
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K")):
        if n and not n % (1 << shift):
            return f"{n >> shift}{unit}"
    return f"{n} bytes"


def parse_topology(text: str) -> tuple[tuple[int, ...], ...]:
    """Parse ``0-1,2-3`` (CPU ranges per node, in node order) into per-node CPU tuples."""
    nodes: list[tuple[int, ...]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ConfigError(f"bad topology {text!r}: empty node")
        cpus: list[int] = []
        for piece in part.split("+"):
            lo, _, hi = piece.partition("-")
            try:
                a = int(lo)
                b = int(hi) if hi else a
            except ValueError:
                raise ConfigError(f"bad topology {text!r}: {piece!r} is not a CPU or CPU range") from None
            if b < a:
                raise ConfigError(f"bad topology {text!r}: range {piece!r} is backwards")
            if a < 0 or b >= MAX_CPUS:
                raise ConfigError(f"bad topology {text!r}: CPU numbers go from 0 to {MAX_CPUS - 1}, not {piece!r}")
            cpus.extend(range(a, b + 1))
        nodes.append(tuple(cpus))
    return tuple(nodes)


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """A machine: CPUs, NUMA nodes, memory, and kernel options.

    ``topology[n]`` lists the CPUs of node ``n``.  Options are named after the kernel's.
    """

    cpus: int = 1
    topology: tuple[tuple[int, ...], ...] = ((0,),)
    mem: int = 2 << 30
    CONFIG_NUMA: bool = True
    CONFIG_DEBUG_SLAB: bool = False
    CONFIG_SLAB_FREELIST_HARDENED: bool = False
    CONFIG_SLAB_MERGE_DEFAULT: bool = True
    CONFIG_SLAB_FREELIST_RANDOM: bool = False
    init_on_alloc: bool = False
    init_on_free: bool = False
    slab_max_order: int | None = None
    noaliencache: bool = False
    slab_nomerge: bool = False
    cache_line_size: int = 64
    HZ: int = 1000
    # reap timing: the initial node next_reap offset comes from the cache's address in the kernel
    reap_seed: int = 0
    # seed of the machine's get_random_int/get_random_long stream (CONFIG_SLAB_FREELIST_RANDOM's entropy):
    # a run repeats exactly for a seed; a real kernel's values cannot be predicted
    random_seed: int = 0
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise ConfigError(f"--cpus must be at least 1, not {self.cpus}")
        if self.cpus > MAX_CPUS:
            raise ConfigError(f"--cpus {self.cpus}: at most {MAX_CPUS} CPUs are modelled")
        seen = sorted(c for node in self.topology for c in node)
        if seen != list(range(self.cpus)):
            twice = sorted({c for c in seen if seen.count(c) > 1})
            missing = sorted(set(range(self.cpus)) - set(seen))
            why = f"CPU {twice[0]} is in it twice" if twice else f"CPU {missing[0]} is missing" if missing else \
                f"CPU {seen[-1]} is beyond the {self.cpus} CPUs"
            raise ConfigError(f"topology {self.topology_text()}: {why}; it must name CPUs 0..{self.cpus - 1} "
                              "exactly once, e.g. 0-1,2-3")
        if any(not node for node in self.topology):
            raise ConfigError("every node needs at least one CPU")
        if len(self.topology) > 1 and not self.CONFIG_NUMA:
            raise ConfigError(f"{len(self.topology)} nodes need CONFIG_NUMA: drop --no-numa, or use one node")
        if self.mem < 64 << 20:
            raise ConfigError(f"--mem {size_text(self.mem)}: at least 64M is needed")
        if self.mem > 1 << 42:
            raise ConfigError(f"--mem {size_text(self.mem)}: at most 4T is modelled")
        unit = len(self.topology) * (2 << 20)
        if self.mem % unit:
            raise ConfigError(f"--mem {size_text(self.mem)} does not split into whole 2M blocks per node: "
                              f"with {len(self.topology)} node(s) use a multiple of {unit >> 20}M, "
                              f"e.g. {size_text(self.mem // unit * unit or unit)}")
        if self.slab_max_order is not None and not 0 <= self.slab_max_order <= 10:
            object.__setattr__(self, "slab_max_order", min(max(self.slab_max_order, 0), 10))
        if self.cache_line_size not in (32, 64, 128):
            raise ConfigError("cache_line_size must be 32, 64 or 128")

    @classmethod
    def build(cls, cpus: int = 1, nodes: int = 1, topology: str | None = None, mem: int | str = 2 << 30,
              **options: object) -> MachineConfig:
        """Make a config from command-line style values (CPUs split contiguously over nodes)."""
        if isinstance(mem, str):
            mem = parse_size(mem)
        if topology:
            topo = parse_topology(topology)
            if nodes not in (1, len(topo)):
                raise ConfigError(f"--nodes {nodes} disagrees with --topology {topology!r} ({len(topo)} nodes)")
            ncpus = sum(len(t) for t in topo)
            if cpus not in (1, ncpus):
                raise ConfigError(f"--cpus {cpus} disagrees with --topology {topology!r} ({ncpus} CPUs)")
            cpus = ncpus
        else:
            if cpus < 1:
                raise ConfigError(f"--cpus must be at least 1, not {cpus}")
            if nodes < 1:
                raise ConfigError(f"--nodes must be at least 1, not {nodes}")
            if nodes > cpus:
                raise ConfigError(f"--nodes {nodes} is more than --cpus {cpus}: every node needs a CPU")
            if nodes > 64:
                raise ConfigError("--nodes: at most 64 nodes are modelled")
            per, extra = divmod(cpus, nodes)
            topo_l: list[tuple[int, ...]] = []
            c = 0
            for n in range(nodes):
                k = per + (1 if n < extra else 0)
                topo_l.append(tuple(range(c, c + k)))
                c += k
            topo = tuple(topo_l)
        return cls(cpus=cpus, topology=topo, mem=mem, **options)  # type: ignore[arg-type]

    @property
    def nr_nodes(self) -> int:
        return len(self.topology)

    def cpu_to_node(self, cpu: int) -> int:
        for n, cpus in enumerate(self.topology):
            if cpu in cpus:
                return n
        raise ConfigError(f"CPU {cpu} does not exist (the machine has CPUs 0..{self.cpus - 1})")

    def topology_text(self) -> str:
        out = []
        for node in self.topology:
            out.append(f"{node[0]}-{node[-1]}" if len(node) > 1 and list(node) == list(range(node[0], node[-1] + 1))
                       else "+".join(map(str, node)))
        return ",".join(out)

    @property
    def mem_per_node(self) -> int:
        return self.mem // self.nr_nodes

    @property
    def effective_slab_max_order(self) -> int:
        if self.slab_max_order is not None:
            return self.slab_max_order
        return 1 if self.mem >> PAGE_SHIFT > 8192 else 0

    @property
    def use_alien_caches(self) -> bool:
        return self.CONFIG_NUMA and self.nr_nodes > 1 and not self.noaliencache
