"""The model's own allocations (node structures, array caches, off-slab freelists, ``struct kmem_cache``)
paired with the kernel's, as the trace shows them."""

from __future__ import annotations

from collections import deque

from ...mm.kernel import Kernel
from ...mm.slab_def import KmemCache
from .boot import Boot
from .options import Internal, ReplaySummary
from .ptrmap import PointerMap
from .sites import INTERNAL_TAGS


class InternalPairing:
    """Pairs each of the model's own structures with the kernel's allocation of it, first come, first
    served within a group (``alloc:node``, ``free:array``...).  ``hook`` is the kernel's ``event_hook``."""

    def __init__(self, k: Kernel, ptrs: PointerMap, boot: Boot, summary: ReplaySummary) -> None:
        self.k = k
        self.ptrs = ptrs
        self.boot = boot
        self.summary = summary
        self.pending_model: dict[str, deque[int]] = {}
        self.pending_trace: dict[str, deque[int]] = {}
        self.hook = self.model_event  # one bound method, so that the fast paths can tell it by identity
        k.set_event_hook(self.hook)

    def model_event(self, kind: str, cachep: KmemCache | None, ptr: int, size: int, flags: int, node: int,
                    internal: str) -> None:
        """The kernel's event hook: an allocation (free) the model made itself, tagged ``internal``."""
        if not internal:
            return
        group = INTERNAL_TAGS.get(internal)
        if group is None:
            return
        is_free = kind in ("kfree", "kmem_cache_free")
        if is_free and group.startswith("alloc:"):
            group = "free:" + group[6:]  # an error path frees what its function allocated
        elif not is_free and group.startswith("free:"):
            group = "alloc:" + group[5:]
        if is_free:
            # the model frees its own structure: forget which kernel pointer stood for it, or, if no
            # kernel allocation was paired with it yet, withdraw it from whichever queue awaits one
            ptrs = self.ptrs
            kptr = ptrs.internal_rev.pop(ptr, None)
            if kptr is not None and ptrs.kmap.get(kptr) == ptr:
                del ptrs.kmap[kptr]
                ptrs.kcache.pop(kptr, None)
            elif ptr:
                for name, waiting in self.pending_model.items():
                    if name.startswith("alloc:") and ptr in waiting:
                        waiting.remove(ptr)
                        self.summary.internal[name + Internal.MODEL_ONLY_FREED_SUFFIX] += 1
                        break
        q = self.pending_trace.get(group)
        if q:
            kptr = q.popleft()
            self.pair(group, kptr, ptr, cachep)
        else:
            self.pending_model.setdefault(group, deque()).append(ptr)

    def pair(self, group: str, kptr: int, mptr: int, cachep: KmemCache | None) -> None:
        self.summary.internal[group + Internal.PAIRED_SUFFIX] += 1
        ptrs = self.ptrs
        if group.startswith("alloc:"):
            if kptr and mptr:
                if group == "alloc:kmem_cache":
                    # a cache's node timers start at an offset from its address (init_cache_node's
                    # ((unsigned long)cachep) % REAPTIMEOUT_NODE): the kernel's address, not the model's
                    self.k.replay_hooks.adopt_kernel_cache_addr(mptr, kptr)
                ptrs.kmap[kptr] = mptr
                ptrs.internal_rev[mptr] = kptr
                if cachep is not None:
                    ptrs.kcache[kptr] = cachep
                ptrs.write(kptr, mptr, "internal", cachep)
        elif kptr in ptrs.kmap and ptrs.internal_rev.get(ptrs.kmap[kptr]) == kptr:
            del ptrs.internal_rev[ptrs.kmap.pop(kptr)]
            ptrs.kcache.pop(kptr, None)

    def trace_internal(self, group: str, kptr: int) -> None:
        """The trace shows the kernel's allocation (free) of one of its own structures."""
        q = self.pending_model.get(group)
        if q:
            mptr = q.popleft()
            cache = self.k.virt_to_cache(mptr) if mptr > 16 else None
            self.pair(group, kptr, mptr, cache)
        else:
            self.pending_trace.setdefault(group, deque()).append(kptr)

    def traced_creation(self, kptr: int) -> None:
        """The trace allocated a struct kmem_cache at ``kptr``: create the manifest's next cache and pair
        the two structures.

        They are paired directly rather than first come, first served: a trace that covers the boot
        starts its kmem events after the kernel created its first caches, which the model creates
        too (from the manifest), so the model has structures no kernel event will ever stand for.
        """
        q = self.pending_model.get("alloc:kmem_cache")
        waiting_before = len(q) if q else 0
        c = self.boot.advance_to_create()
        q = self.pending_model.get("alloc:kmem_cache")
        if c is not None and q and len(q) > waiting_before and q[-1] == c.addr:
            q.pop()
            self.pair("alloc:kmem_cache", kptr, c.addr, self.k.virt_to_cache(c.addr) if c.addr > 16 else None)
        else:
            self.trace_internal("alloc:kmem_cache", kptr)

    def finish(self) -> None:
        """Count the structures that were never paired."""
        for group, q in self.pending_model.items():
            if q:
                self.summary.internal[group + Internal.MODEL_ONLY_SUFFIX] += len(q)
        for group, q in self.pending_trace.items():
            if q:
                self.summary.internal[group + Internal.TRACE_ONLY_SUFFIX] += len(q)
