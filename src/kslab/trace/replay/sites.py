"""Call sites: which trace call sites are the kernel's own structures (paired with the model's), and the
short function name of a call site."""

from __future__ import annotations

#: the pairing groups of CONFIG_SLAB_FREELIST_RANDOM's per-cache random_seq array (cache_random_seq_create's
#: kcalloc, cache_random_seq_destroy's kfree)
RANDOM_SEQ_ALLOC = "alloc:random_seq"
RANDOM_SEQ_FREE = "free:random_seq"

# trace call-site function -> group; the model tags its internal calls (internal="...") and
# INTERNAL_TAGS maps those tags to the same groups, so both sides can be paired.
ALLOC_SITES = {
    "kmem_cache_create_usercopy": "alloc:kmem_cache", "create_cache": "alloc:kmem_cache",
    "kmem_cache_create": "alloc:kmem_cache", "create_kmalloc_cache": "alloc:kmem_cache",
    "init_cache_node": "alloc:node", "setup_cpu_cache": "alloc:node", "init_list": "alloc:node",
    "setup_kmem_cache_node": "alloc:array", "alloc_arraycache": "alloc:array",
    "__alloc_alien_cache": "alloc:array", "alloc_alien_cache": "alloc:array",
    "cache_grow_begin": "alloc:freelist", "alloc_slabmgmt": "alloc:freelist",
    "cache_random_seq_create": RANDOM_SEQ_ALLOC,
}
FREE_SITES = {
    "setup_kmem_cache_node": "free:array", "free_alien_cache": "free:array", "__kmem_cache_release": "free:array",
    "cpuup_canceled": "free:array", "alloc_alien_cache": "free:array", "__kmem_cache_shutdown": "free:array",
    "slab_destroy": "free:freelist", "slab_kmem_cache_release": "free:kmem_cache",
    "kmem_cache_release": "free:kmem_cache", "kmem_cache_destroy": "free:kmem_cache",
    "shutdown_cache": "free:kmem_cache", "cache_random_seq_destroy": RANDOM_SEQ_FREE,
}
INTERNAL_TAGS = {
    "create_cache": "alloc:kmem_cache", "create_kmalloc_cache": "alloc:kmem_cache",
    "init_cache_node": "alloc:node", "setup_cpu_cache": "alloc:node", "init_list": "alloc:node",
    "alloc_arraycache": "alloc:array", "__alloc_alien_cache": "alloc:array", "alloc_alien_cache": "alloc:array",
    "alloc_slabmgmt": "alloc:freelist",
    "setup_kmem_cache_node": "free:array", "free_alien_cache": "free:array", "__kmem_cache_release": "free:array",
    "cpuup_canceled": "free:array",
    "slab_destroy": "free:freelist", "kmem_cache_destroy": "free:kmem_cache",
    "cache_random_seq_create": RANDOM_SEQ_ALLOC, "cache_random_seq_destroy": RANDOM_SEQ_FREE,
}

# Callers of kmem_cache_shrink() whose cache the function tracer does not name: ACPICA's
# acpi_purge_cached_objects() purges its caches in this order.
KNOWN_SHRINK_CALLERS = {"acpi_os_purge_cache": ("Acpi-State", "Acpi-Operand", "Acpi-Parse", "Acpi-ParseExt")}

#: the call sites of a /proc/slabinfo reader's buffer allocation (see markers.Markers.mark)
SLABINFO_READ_SITES = ("seq_read_iter", "seq_read")

_SITE_FUNCTIONS: dict[str, str] = {}  # site_function()'s answers: a trace has few distinct call sites


def site_function(call_site: str) -> str:
    """``foo+0x10/0x20 [mod]`` -> ``foo`` (``.constprop.0``-style suffixes removed)."""
    f = _SITE_FUNCTIONS.get(call_site)
    if f is None:
        f = call_site.split("+", 1)[0].split(" ", 1)[0]
        dot = f.find(".")
        if dot > 0:
            f = f[:dot]
        if len(_SITE_FUNCTIONS) >= 100_000:
            _SITE_FUNCTIONS.clear()
        _SITE_FUNCTIONS[call_site] = f
    return f


# The fast paths' call-site classification (see fastpath.FastPath): a call site is plain when its
# function is not one of the model's own allocations (frees).  Answers remembered, like site_function's.
PLAIN_ALLOC_SITES: dict[str, bool] = {}
PLAIN_FREE_SITES: dict[str, bool] = {}


def plain_alloc_site(call_site: str) -> bool:
    if len(PLAIN_ALLOC_SITES) >= 100_000:
        PLAIN_ALLOC_SITES.clear()
    plain = PLAIN_ALLOC_SITES[call_site] = site_function(call_site) not in ALLOC_SITES
    return plain


def plain_free_site(call_site: str) -> bool:
    if len(PLAIN_FREE_SITES) >= 100_000:
        PLAIN_FREE_SITES.clear()
    plain = PLAIN_FREE_SITES[call_site] = site_function(call_site) not in FREE_SITES
    return plain
