"""SLUB as Linux 6.12 has it (mm/slub.c, mm/slab_common.c, mm/slab.h, include/linux/slab.h).

A second allocator beside SLAB's ``kslab.mm.slab``.  This layer holds the cache geometry (``calculate_sizes``,
``calculate_order``, ``min_partial``, ``cpu_partial``), the kmalloc caches, merging (``find_mergeable``) and
the boot of the caches from a creation manifest; it is not wired into ``Kernel`` yet.
"""
