"""The static call graph of mm/slab.c (v5.10) that :mod:`kslab.report.narrate` indents its steps by.

Data only: :data:`CALLS` (caller -> callees), :data:`REENTRANT` (edges that re-enter the allocator) and
:data:`MAX_HOPS`; :func:`kslab.report.narrate.call_path` searches it.  A function that records a new
step (``kslab.mm`` ``explain.step(FUNC, KEY, ...)``) needs its caller -> FUNC edge here, unless the edge
is already listed.
"""

from __future__ import annotations

__all__ = ["CALLS", "MAX_HOPS", "REENTRANT"]

# caller -> callees, as far as narration needs it (functions that record steps, and the functions on
# the way to them).  Order matters only for ties between equally short paths.
CALLS: dict[str, tuple[str, ...]] = {
    # free side (the seed's structure)
    "kfree": ("virt_to_cache", "__cache_free"),
    "kmem_cache_free": ("cache_from_obj", "__cache_free"),
    "kfree_bulk": ("kmem_cache_free_bulk",),
    "kmem_cache_free_bulk": ("virt_to_cache", "cache_from_obj", "__cache_free"),
    "cache_from_obj": ("virt_to_cache",),
    "virt_to_cache": ("virt_to_head_page",),
    "virt_to_head_page": ("compound_head",),
    "__cache_free": ("___cache_free",),
    "___cache_free": ("cache_free_alien", "cache_flusharray", "cache_free_pfmemalloc", "__free_one"),
    "cache_free_alien": ("__cache_free_alien",),
    "__cache_free_alien": ("__drain_alien_cache", "__free_one", "free_block", "slabs_destroy"),
    "__drain_alien_cache": ("transfer_objects", "free_block"),
    "cache_flusharray": ("free_block", "slabs_destroy"),
    "cache_free_pfmemalloc": ("free_block", "slabs_destroy"),
    "free_block": ("slab_put_obj",),
    "slab_put_obj": ("obj_to_index", "set_free_obj"),
    "slabs_destroy": ("slab_destroy",),
    "slab_destroy": ("kmem_freepages", "kmem_rcu_free", "kmem_cache_free"),
    "kmem_rcu_free": ("kmem_freepages",),
    # allocation side
    "__do_kmalloc": ("kmalloc_slab", "slab_alloc"),
    "__do_kmalloc_node": ("kmalloc_slab", "slab_alloc_node"),
    "kmem_cache_alloc": ("slab_alloc",),
    "kmem_cache_alloc_node": ("slab_alloc_node",),
    "slab_alloc": ("__do_cache_alloc",),
    "slab_alloc_node": ("____cache_alloc", "____cache_alloc_node", "fallback_alloc"),
    "__do_cache_alloc": ("alternate_node_alloc", "____cache_alloc", "____cache_alloc_node"),
    "alternate_node_alloc": ("____cache_alloc_node",),
    "____cache_alloc": ("cache_alloc_refill",),
    "cache_alloc_refill": ("transfer_objects", "alloc_block", "fixup_slab_list", "cache_alloc_pfmemalloc",
                           "cache_grow_begin", "cache_grow_end"),
    "cache_alloc_pfmemalloc": ("fixup_slab_list",),
    "____cache_alloc_node": ("fixup_slab_list", "cache_grow_begin", "cache_grow_end", "fallback_alloc"),
    "fallback_alloc": ("____cache_alloc_node", "cache_grow_begin", "cache_grow_end"),
    "cache_grow_begin": ("kmem_getpages", "alloc_slabmgmt", "cache_init_objs", "kmem_freepages"),
    "cache_init_objs": ("shuffle_freelist",),
    "alloc_slabmgmt": ("kmem_cache_alloc_node",),
    "cache_grow_end": ("fixup_slab_list",),
    # reaping and tuning
    "cache_reap": ("reap_alien", "drain_array", "drain_freelist"),
    "reap_alien": ("__drain_alien_cache", "slabs_destroy"),
    "drain_array": ("drain_array_locked", "slabs_destroy"),
    "drain_array_locked": ("free_block",),
    "drain_freelist": ("slab_destroy",),
    "do_tune_cpucache": ("free_block", "slabs_destroy"),
    "enable_cpucache": ("cache_random_seq_create", "do_tune_cpucache"),
    "cache_random_seq_create": ("__do_kmalloc",),
}

# Edges that re-enter the allocator (an off-slab freelist is itself a slab object).  They are used
# only for a direct call, never as a pass-through, so a later step cannot be mistaken for part of
# the recursive call.
REENTRANT = frozenset({("slab_destroy", "kmem_cache_free"), ("alloc_slabmgmt", "kmem_cache_alloc_node")})
MAX_HOPS = 5
