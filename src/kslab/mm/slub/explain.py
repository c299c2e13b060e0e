"""The decisions SLUB's paths record for ``kslab explain`` (mm/slub.c, 6.12).

When ``SlubMM.explain`` (``SlubKernel.explain``) is an :class:`~kslab.mm.explain.Explain`, the functions of
``kslab.mm.slub`` append a :class:`~kslab.mm.explain.Step` per decision: the kernel function, the branch taken
and the values that decided it; ``kslab.report.narrate`` renders them with SLUB's call graph and templates.
:data:`SLUB_STEPS` names every (function, branch) the paths can record: some paths pick the branch's name
from the same values that pick the branch, so the names are listed here once, and the tests check that the
paths record only these, that each has an English and a Chinese template, and that each is reached.
"""

from __future__ import annotations

from typing import Final

#: kernel function -> the branches it records
SLUB_STEP_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "___slab_alloc": ("bypass", "cpu_freelist", "cpu_partial", "cpu_partial_other_node", "debug_new_slab",
                      "debug_partial", "from_partial",
                      "load_freelist", "new_objects", "new_slab", "no_cpu_slab", "node_mismatch", "oom", "refill",
                      "thisnode_failed"),
    "__do_kmalloc_node": ("cache", "large", "zero"),
    "__kmem_cache_alloc_bulk": ("done", "failed", "slowpath"),
    "__kmem_cache_do_shrink": ("node",),
    "__kmem_cache_shrink": ("entry",),
    "__put_partials": ("discard", "to_node"),
    "__slab_alloc_node": ("fastpath", "no_cpu_slab", "no_freelist", "node_mismatch"),
    "__slab_free": ("add_partial", "discard", "frozen", "keep_partial", "on_cpu_partial", "stays", "to_cpu_partial"),
    "allocate_slab": ("failed", "fallback", "oo"),
    "build_detached_freelist": ("chain",),
    "deactivate_slab": ("empty", "full", "to_head", "to_tail"),
    "do_slab_free": ("fastpath", "slowpath"),
    "flush_cpu_slab": ("flush",),
    "free_slab": ("now", "rcu"),
    "get_any_partial": ("ratio", "skip", "try"),
    "free_to_partial_list": ("freed", "refused"),
    "get_partial": ("thisnode",),
    "get_partial_node": ("empty", "take", "to_cpu_partial"),
    "kfree": ("large", "null", "slab"),
    "kmem_cache_alloc_bulk_noprof": ("entry",),
    "kmem_cache_free_bulk": ("entry",),
    "put_cpu_partial": ("drain", "put"),
    "slab_alloc_node": ("done", "entry", "failed"),
}

SLUB_STEPS: Final = frozenset((func, key) for func, keys in SLUB_STEP_KEYS.items() for key in keys)
