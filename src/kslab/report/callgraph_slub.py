"""The static call graph of mm/slub.c (v6.12) that :mod:`kslab.report.narrate` indents SLUB's steps by.

Data only, as :mod:`kslab.report.callgraph` is for SLAB: :data:`CALLS` (caller -> callees, the functions
that record steps in ``kslab.mm.slub`` and the silent ones on the way to them), :data:`REENTRANT` and
:data:`MAX_HOPS`.  Both graphs name functions the two allocators share (``kfree``, ``slab_alloc_node``),
which is why each allocator has its own.
"""

from __future__ import annotations

__all__ = ["CALLS", "MAX_HOPS", "REENTRANT"]

CALLS: dict[str, tuple[str, ...]] = {
    # allocation
    "__do_kmalloc_node": ("kmalloc_slab", "slab_alloc_node", "___kmalloc_large_node"),
    "kmem_cache_alloc_noprof": ("slab_alloc_node",),
    "kmem_cache_alloc_node_noprof": ("slab_alloc_node",),
    "slab_alloc_node": ("__slab_alloc_node",),
    "__slab_alloc_node": ("__slab_alloc",),
    "__slab_alloc": ("___slab_alloc",),
    "___slab_alloc": ("deactivate_slab", "get_freelist", "__put_partials", "get_partial", "freeze_slab", "new_slab",
                      "alloc_single_from_new_slab"),
    "get_partial": ("get_partial_node", "get_any_partial"),
    "get_any_partial": ("get_partial_node",),
    "get_partial_node": ("remove_partial", "put_cpu_partial", "alloc_single_from_partial"),
    "new_slab": ("allocate_slab",),
    "allocate_slab": ("alloc_slab_page", "shuffle_freelist"),
    # bulk
    "kmem_cache_alloc_bulk_noprof": ("__kmem_cache_alloc_bulk",),
    "__kmem_cache_alloc_bulk": ("___slab_alloc", "kmem_cache_free_bulk"),
    "kfree_bulk": ("kmem_cache_free_bulk",),
    "kmem_cache_free_bulk": ("build_detached_freelist", "slab_free_bulk"),
    "slab_free_bulk": ("do_slab_free",),
    # free
    "kfree": ("slab_free", "free_large_kmalloc"),
    "kmem_cache_free": ("slab_free",),
    "slab_free": ("do_slab_free",),
    "do_slab_free": ("__slab_free",),
    "__slab_free": ("put_cpu_partial", "remove_partial", "add_partial", "discard_slab", "free_to_partial_list"),
    "free_to_partial_list": ("free_debug_processing", "free_slab"),
    "put_cpu_partial": ("__put_partials",),
    "__put_partials": ("add_partial", "discard_slab"),
    "deactivate_slab": ("add_partial", "discard_slab"),
    "discard_slab": ("free_slab",),
    "free_slab": ("__free_slab", "rcu_free_slab"),
    # flushing and shrinking
    "kmem_cache_shrink": ("__kmem_cache_shrink",),
    "__kmem_cache_shrink": ("flush_all", "__kmem_cache_do_shrink"),
    "flush_all": ("flush_all_cpus_locked",),
    "flush_all_cpus_locked": ("flush_cpu_slab",),
    "flush_cpu_slab": ("flush_slab", "put_partials_cpu"),
    "flush_slab": ("deactivate_slab",),
    "put_partials_cpu": ("__put_partials",),
    "__kmem_cache_do_shrink": ("free_slab",),
}

REENTRANT: frozenset[tuple[str, str]] = frozenset()
MAX_HOPS = 5
