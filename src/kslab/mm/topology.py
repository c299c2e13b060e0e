"""The machine's CPUs and nodes: the current CPU (smp_processor_id), CPU hotplug (cpuup_prepare on the way
up, cpuup_canceled on the way down, the boot CPU joining its node's mask late) and node iteration.

:class:`KernelTopology` is a base class of :class:`~kslab.mm.kernel.Kernel` (the class is not used on its
own); the masks are :class:`Topology`, ``Kernel.topo``.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, cast

from .config import MachineConfig
from .errors import ConfigError
from .slab import reap as _reap

if TYPE_CHECKING:
    from .kernel import Kernel
    from .timer import ReapWork

__all__ = ["KernelTopology", "Topology"]


class Topology:
    """The machine's CPU and node masks (``Kernel.topo``): ``cpu_to_node[cpu]`` (cpu_to_node()),
    ``online_cpus`` (cpu_online_mask), ``online_nodes`` (node_online_map), ``node_cpus[node]``
    (node_to_cpumask_map: the CPUs of a node that are online, the boot CPU once it has joined,
    ``boot_cpu_in_node``), and ``numa`` (CONFIG_NUMA).  ``nr_cpu_ids``, ``nr_node_ids`` and ``numa_multi``
    stay on the Kernel: the replay's per-event paths read them."""

    __slots__ = ("boot_cpu_in_node", "cpu_to_node", "node_cpus", "numa", "online_cpus", "online_nodes")

    def __init__(self, config: MachineConfig) -> None:
        self.numa = config.CONFIG_NUMA
        self.online_nodes = list(range(config.nr_nodes))
        self.cpu_to_node = [config.cpu_to_node(c) for c in range(config.cpus)]
        self.node_cpus: list[set[int]] = [set() for _ in self.online_nodes]
        self.online_cpus: set[int] = set()
        self.boot_cpu_in_node = False


class KernelTopology:
    """CPU selection, hotplug and node iteration of :class:`~kslab.mm.kernel.Kernel`."""

    nr_cpu_ids: int
    topo: Topology
    cpu: int
    numa_node: int
    reap_work: ReapWork

    if TYPE_CHECKING:
        def log(self, what: str, **fields: object) -> None: ...
        def start_cpu_timer(self, cpu: int) -> None: ...

    @property
    def online_nodes(self) -> list[int]:
        """node_online_map, read by code that takes either allocator's machine (SLUB's has the same name)."""
        return self.topo.online_nodes

    def boot_cpu_joins_node(self) -> None:
        """arch_cpu_finalize_init(): on an x86 NUMA build the boot CPU enters its node's mask only now."""
        if not self.topo.boot_cpu_in_node:
            self.topo.boot_cpu_in_node = True
            if self.topo.numa:
                self.topo.node_cpus[self.topo.cpu_to_node[0]].add(0)

    def cpu_up(self, cpu: int) -> None:
        """Bring a secondary CPU online: cpuup_prepare(), then it joins its node and starts reaping."""
        if not 0 <= cpu < self.nr_cpu_ids:
            raise ConfigError(f"cpu_up {cpu}: the machine has CPUs 0..{self.nr_cpu_ids - 1}")
        if cpu in self.topo.online_cpus:
            return
        self.boot_cpu_joins_node()
        node = self.topo.cpu_to_node[cpu]
        self.log("cpuup_prepare", cpu=cpu, node=node, node_cpus=self.nr_cpus_node(node))
        saved = self.set_cpu(0)
        _reap.cpuup_prepare(cast("Kernel", self), cpu)
        self.set_cpu(saved)
        self.topo.online_cpus.add(cpu)
        if self.topo.numa:
            self.topo.node_cpus[node].add(cpu)
        _reap.init_reap_node(cast("Kernel", self), cpu)
        self.start_cpu_timer(cpu)

    def cpu_down(self, cpu: int) -> None:
        """Take a CPU offline: it leaves its node mask, then cpuup_canceled() drains what it held."""
        if cpu not in self.topo.online_cpus or len(self.topo.online_cpus) == 1:
            raise ConfigError(f"cpu_down {cpu}: not an online CPU, or the last one")
        self.topo.online_cpus.discard(cpu)
        self.topo.node_cpus[self.topo.cpu_to_node[cpu]].discard(cpu)
        work = self.reap_work
        work.timers = [t for t in work.timers if t[2] != cpu]
        heapq.heapify(work.timers)
        saved = self.set_cpu(min(self.topo.online_cpus))
        _reap.cpuup_canceled(cast("Kernel", self), cpu)
        self.set_cpu(saved)

    def set_cpu(self, cpu: int) -> int:
        """Run what follows on ``cpu``; returns the previous CPU."""
        old = self.cpu
        if cpu != old:
            if not 0 <= cpu < self.nr_cpu_ids:
                raise ConfigError(f"CPU {cpu} does not exist (the machine has CPUs 0..{self.nr_cpu_ids - 1})")
            self.cpu = cpu
            self.numa_node = self.topo.cpu_to_node[cpu]
        return old

    def nr_cpus_node(self, node: int) -> int:
        return len(self.topo.node_cpus[node])

    def next_node_in(self, node: int) -> int:
        nodes = self.topo.online_nodes
        for n in nodes:
            if n > node:
                return n
        return nodes[0]
