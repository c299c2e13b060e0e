"""The machine's CPUs and nodes: the current CPU (smp_processor_id), CPU hotplug (cpuup_prepare on the way
up, cpuup_canceled on the way down, the boot CPU joining its node's mask late) and node iteration.

:class:`KernelTopology` is a base class of :class:`~kslab.mm.kernel.Kernel`, which owns the state it
works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, cast

from .errors import ConfigError
from .slab import reap as _reap

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["KernelTopology"]


class KernelTopology:
    """CPU selection, hotplug and node iteration of :class:`~kslab.mm.kernel.Kernel`."""

    numa: bool
    nr_cpu_ids: int
    online_nodes: list[int]
    cpu_to_node: list[int]
    node_cpus: list[set[int]]
    online_cpus: set[int]
    boot_cpu_in_node: bool
    cpu: int
    numa_node: int
    reap_timers: list[tuple[int, int, int]]

    if TYPE_CHECKING:
        def log(self, what: str, **fields: object) -> None: ...
        def start_cpu_timer(self, cpu: int) -> None: ...

    def boot_cpu_joins_node(self) -> None:
        """arch_cpu_finalize_init(): on an x86 NUMA build the boot CPU enters its node's mask only now."""
        if not self.boot_cpu_in_node:
            self.boot_cpu_in_node = True
            if self.numa:
                self.node_cpus[self.cpu_to_node[0]].add(0)

    def cpu_up(self, cpu: int) -> None:
        """Bring a secondary CPU online: cpuup_prepare(), then it joins its node and starts reaping."""
        if not 0 <= cpu < self.nr_cpu_ids:
            raise ConfigError(f"cpu_up {cpu}: the machine has CPUs 0..{self.nr_cpu_ids - 1}")
        if cpu in self.online_cpus:
            return
        self.boot_cpu_joins_node()
        node = self.cpu_to_node[cpu]
        self.log("cpuup_prepare", cpu=cpu, node=node, node_cpus=self.nr_cpus_node(node))
        saved = self.set_cpu(0)
        _reap.cpuup_prepare(cast("Kernel", self), cpu)
        self.set_cpu(saved)
        self.online_cpus.add(cpu)
        if self.numa:
            self.node_cpus[node].add(cpu)
        _reap.init_reap_node(cast("Kernel", self), cpu)
        self.start_cpu_timer(cpu)

    def cpu_down(self, cpu: int) -> None:
        """Take a CPU offline: it leaves its node mask, then cpuup_canceled() drains what it held."""
        if cpu not in self.online_cpus or len(self.online_cpus) == 1:
            raise ConfigError(f"cpu_down {cpu}: not an online CPU, or the last one")
        self.online_cpus.discard(cpu)
        self.node_cpus[self.cpu_to_node[cpu]].discard(cpu)
        self.reap_timers = [t for t in self.reap_timers if t[2] != cpu]
        heapq.heapify(self.reap_timers)
        saved = self.set_cpu(min(self.online_cpus))
        _reap.cpuup_canceled(cast("Kernel", self), cpu)
        self.set_cpu(saved)

    def set_cpu(self, cpu: int) -> int:
        """Run what follows on ``cpu``; returns the previous CPU."""
        old = self.cpu
        if cpu != old:
            if not 0 <= cpu < self.nr_cpu_ids:
                raise ConfigError(f"CPU {cpu} does not exist (the machine has CPUs 0..{self.nr_cpu_ids - 1})")
            self.cpu = cpu
            self.numa_node = self.cpu_to_node[cpu]
        return old

    def nr_cpus_node(self, node: int) -> int:
        return len(self.node_cpus[node])

    def next_node_in(self, node: int) -> int:
        nodes = self.online_nodes
        for n in nodes:
            if n > node:
                return n
        return nodes[0]
