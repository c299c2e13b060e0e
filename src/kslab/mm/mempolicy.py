"""Where a task's slab memory comes from on a NUMA machine: its memory policy (mm/mempolicy.c's
local, preferred, interleave and bind) and the cpuset's memory spreading (cpuset_slab_spread_node).

:class:`KernelMemPolicy` is a base class of :class:`~kslab.mm.kernel.Kernel`, which owns the state it
works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .kernel import Kernel
    from .topology import Topology

__all__ = ["KernelMemPolicy", "MemPolicy"]


@dataclass
class MemPolicy:
    """A task's NUMA memory policy (mm/mempolicy.c): local, preferred, interleave or bind."""

    mode: str = "local"
    nodes: tuple[int, ...] = ()
    il_prev: int = -1

    def set_interleave_phase(self, prev: int) -> None:
        """The interleave rotor's last node (il_prev): the next interleaved allocation takes the next one."""
        self.il_prev = prev

    def slab_node(self, k: Kernel, node: int) -> int:
        """mempolicy_slab_node() for this policy."""
        if self.mode == "preferred" and self.nodes:
            return self.nodes[0]
        if self.mode == "interleave" and self.nodes:
            nodes = sorted(self.nodes)
            nxt = next((n for n in nodes if n > self.il_prev), nodes[0])
            self.il_prev = nxt
            return nxt
        if self.mode == "bind" and self.nodes:
            return node if node in self.nodes else min(self.nodes)
        return node




class KernelMemPolicy:
    """The tasks' memory policies and the cpuset spread rotor of :class:`~kslab.mm.kernel.Kernel`."""

    cpu: int
    topo: Topology
    policies: dict[int, MemPolicy]
    _spread_rotor: int

    if TYPE_CHECKING:
        def next_node_in(self, node: int) -> int: ...

    def set_policy(self, cpu: int, pol: MemPolicy | None) -> None:
        """The memory policy of the task running on ``cpu`` (None: the default, local one)."""
        if pol is None:
            self.policies.pop(cpu, None)
        else:
            self.policies[cpu] = pol

    def clear_policies(self) -> None:
        """Every task back to the default (local) policy."""
        self.policies.clear()

    def set_mempolicy(self, cpu: int, mode: str = "local", nodes: Iterable[int] = ()) -> None:
        """Give the task running on ``cpu`` a memory policy (local, preferred, interleave, bind)."""
        if mode not in ("local", "preferred", "interleave", "bind"):
            raise ConfigError(f"unknown memory policy {mode!r}: use local, preferred, interleave or bind")
        ns = tuple(nodes)
        for n in ns:
            if n not in self.topo.online_nodes:
                raise ConfigError(f"memory policy names node {n}, which does not exist")
        if mode == "local":
            self.policies.pop(cpu, None)
        else:
            self.policies[cpu] = MemPolicy(mode, ns)

    def current_policy(self) -> MemPolicy | None:
        return self.policies.get(self.cpu) if self.policies else None

    def cpuset_slab_spread_node(self) -> int:
        self._spread_rotor = self.next_node_in(self._spread_rotor)
        return self._spread_rotor
