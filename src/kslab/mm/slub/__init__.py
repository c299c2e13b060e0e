"""SLUB as Linux 6.12 has it (mm/slub.c, mm/slab_common.c, mm/slab.h, include/linux/slab.h).

A second allocator beside SLAB's ``kslab.mm.slab``.  This layer holds the cache geometry (``calculate_sizes``,
``calculate_order``, ``min_partial``, ``cpu_partial``), the kmalloc caches, merging (``find_mergeable``) and
the boot of the caches from a creation manifest, ``struct slab`` and ``kmem_cache_cpu`` with the lockless fast
paths (``fastpath``), the per-node ``kmem_cache_node`` and /proc/slabinfo (``node``), the slow paths
(``partial``: new_slab, deactivate_slab, the per-CPU partial list, flushes, shrinking; ``slowpath``:
___slab_alloc, get_partial_node/get_any_partial, __slab_free) and ``allocator.SlubAllocator`` on top
(kmem_cache_alloc/free, kmalloc/kfree).  It is not wired into ``Kernel`` yet.
"""
