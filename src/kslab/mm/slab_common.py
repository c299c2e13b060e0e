"""Cache creation, merging, destruction and the boot sequence.

Mirrors mm/slab_common.c (``kmem_cache_create_usercopy``, ``kmem_cache_create``, ``create_cache``,
``create_boot_cache``, ``create_kmalloc_cache``, ``find_mergeable``, ``slab_unmergeable``,
``kmem_cache_destroy``, ``kmem_cache_shrink``) and mm/slab.c (``__kmem_cache_alias``,
``__kmem_cache_create``, ``kmem_cache_init``, ``kmem_cache_init_late``, ``__kmem_cache_release``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .gfp import __GFP_ZERO, GFP_KERNEL, GFP_NOWAIT
from .slab import alloc, free
from .slab.freelist_random import cache_random_seq_destroy
from .slab.geometry import ALIGN, calculate_alignment, compute_geometry
from .slab.kmalloc import create_kmalloc_caches, kfree, kmalloc_index, kmalloc_node, setup_kmalloc_cache_index_table
from .slab.reap import __kmem_cache_shrink, __kmem_cache_shutdown
from .slab.tune import enable_cpucache, free_alien_cache, setup_cpu_cache
from .slab_def import (
    ARCH_KMALLOC_MINALIGN,
    FULL,
    KMALLOC_NORMAL,
    PARTIAL,
    PARTIAL_NODE,
    SIZEOF_KMEM_CACHE_NODE,
    SLAB_CACHE_FLAGS,
    SLAB_CORE_FLAGS,
    SLAB_DEBUG_FLAGS,
    SLAB_FLAGS_PERMITTED,
    SLAB_HWCACHE_ALIGN,
    SLAB_MERGE_SAME,
    SLAB_NEVER_MERGE,
    SLAB_PANIC,
    SLAB_TYPESAFE_BY_RCU,
    KmemCache,
)

if TYPE_CHECKING:
    from .kernel import Kernel

KERNEL_SYMBOLS = ("slab_unmergeable", "find_mergeable", "__kmem_cache_alias", "__kmem_cache_create",
                  "create_cache", "kmem_cache_create_usercopy", "kmem_cache_create", "create_boot_cache",
                  "create_kmalloc_cache", "__kmem_cache_release", "kmem_cache_destroy", "kmem_cache_shrink",
                  "kmem_cache_init", "kmem_cache_init_late", "kmem_cache_size_of_struct")

EINVAL = 22


def kmem_cache_size_of_struct(k: Kernel) -> int:
    """offsetof(struct kmem_cache, node) + nr_node_ids pointers (x86_64, no KASAN; FREELIST_RANDOM adds
    the random_seq pointer)."""
    random_seq = 8 if k.config.CONFIG_SLAB_FREELIST_RANDOM else 0
    return (240 if k.debug else 136) + random_seq + 8 * k.nr_node_ids


def slab_unmergeable(k: Kernel, s: KmemCache) -> bool:
    if k.boot_params.slab_nomerge or s.flags & SLAB_NEVER_MERGE:
        return True
    if s.ctor:
        return True
    if s.usersize:
        return True
    return s.refcount < 0


def find_mergeable(k: Kernel, size: int, align: int, flags: int, name: str, ctor: Any) -> KmemCache | None:
    if k.boot_params.slab_nomerge or ctor:
        return None
    size = ALIGN(size, 8)
    align = calculate_alignment(flags, align, size, k.config.cache_line_size)
    size = ALIGN(size, align)
    if flags & SLAB_NEVER_MERGE:
        return None
    for s in reversed(k.slab_caches):  # oldest first
        if slab_unmergeable(k, s):
            continue
        if size > s.size:
            continue
        if (flags & SLAB_MERGE_SAME) != (s.flags & SLAB_MERGE_SAME):
            continue
        if (s.size & ~(align - 1)) != s.size:  # the kernel's mask test, also for odd alignments
            continue
        if s.size - size >= 8:
            continue
        if s.align < align or s.align % align:
            continue
        return s
    return None


def __kmem_cache_alias(k: Kernel, name: str, size: int, align: int, flags: int, ctor: Any) -> KmemCache | None:
    cachep = find_mergeable(k, size, align, flags, name, ctor)
    if cachep is not None:
        cachep.refcount += 1
        cachep.object_size = max(cachep.object_size, size)
        cachep.aliases.append(name)
        k.log("alias", name=name, target=cachep.name)
    return cachep


def __kmem_cache_create(k: Kernel, cachep: KmemCache, flags: int) -> int:
    gfp = GFP_KERNEL if k.slab_state >= 3 else GFP_NOWAIT  # slab_is_available(): state >= UP
    err = compute_geometry(k, cachep, flags)
    if err:
        return err
    return setup_cpu_cache(cachep, gfp)


def create_cache(k: Kernel, name: str, object_size: int, align: int, flags: int, useroffset: int, usersize: int,
                 ctor: Any) -> KmemCache | int:
    if useroffset + usersize > object_size:
        useroffset = usersize = 0
    kc = k.kmem_cache
    assert kc is not None
    addr = alloc.kmem_cache_alloc(kc, GFP_KERNEL | __GFP_ZERO, internal="create_cache")
    if not addr:
        return -12
    s = KmemCache(k, name, object_size, align, ctor, useroffset, usersize)
    s.addr = addr
    s.node = [None] * k.nr_node_ids
    k.cache_by_addr[addr] = s
    err = __kmem_cache_create(k, s, flags)
    if err:
        del k.cache_by_addr[addr]
        free.kmem_cache_free(kc, addr, internal="create_cache")
        return err
    s.refcount = 1
    k.slab_caches.insert(0, s)
    k.log_geometry(s)
    return s


def kmem_cache_create_usercopy(k: Kernel, name: str, size: int, align: int, flags: int, useroffset: int,
                               usersize: int, ctor: Callable[[int], Any] | bool | None) -> KmemCache | None:
    """Create (or merge into an existing) cache; None on failure, with the kernel's message."""
    k.log("create", name=name, size=size, align=align, flags=flags, ctor=int(bool(ctor)), via="create")
    err = 0
    s: KmemCache | int | None = None
    if flags & ~SLAB_FLAGS_PERMITTED & 0xFFFFFFFF or flags < 0:
        err = -EINVAL
    else:
        mask = SLAB_CORE_FLAGS | SLAB_CACHE_FLAGS | (SLAB_DEBUG_FLAGS if k.debug else 0)
        flags &= mask
        if (not usersize and useroffset) or size < usersize or size - usersize < useroffset:
            usersize = useroffset = 0
        if not usersize:
            alias = __kmem_cache_alias(k, name, size, align, flags, ctor)
            if alias is not None:
                return alias
        s = create_cache(k, name, size, calculate_alignment(flags, align, size, k.config.cache_line_size), flags,
                         useroffset, usersize, ctor)
        if isinstance(s, int):
            err = s
    if err:
        if flags & SLAB_PANIC:
            k.panic(f"kmem_cache_create: Failed to create slab '{name}'. Error {err}")
        k.printk(f"kmem_cache_create({name}) failed with error {err}")
        return None
    assert isinstance(s, KmemCache)
    return s


def kmem_cache_create(k: Kernel, name: str, size: int, align: int, flags: int,
                      ctor: Callable[[int], Any] | bool | None) -> KmemCache | None:
    """kmem_cache_create(): kmem_cache_create_usercopy() without a usercopy window."""
    return kmem_cache_create_usercopy(k, name, size, align, flags, 0, 0, ctor)


def create_boot_cache(k: Kernel, s: KmemCache, name: str, size: int, flags: int, useroffset: int,
                      usersize: int) -> None:
    align = ARCH_KMALLOC_MINALIGN
    if size and size & (size - 1) == 0:
        align = max(align, size)
    s.name = name
    s.size = s.object_size = size
    s.align = calculate_alignment(flags, align, size, k.config.cache_line_size)
    s.useroffset = useroffset
    s.usersize = usersize
    err = __kmem_cache_create(k, s, flags)
    if err:
        k.panic(f"Creation of kmalloc slab {name} size={size} failed. Reason {err}")
    s.refcount = -1


def create_kmalloc_cache(k: Kernel, name: str, size: int, flags: int, useroffset: int, usersize: int) -> KmemCache:
    k.log("create", name=name, size=size, align=8, flags=flags, ctor=0, via="kmalloc")
    kc = k.kmem_cache
    assert kc is not None
    addr = alloc.kmem_cache_alloc(kc, GFP_NOWAIT | __GFP_ZERO, internal="create_kmalloc_cache")
    if not addr:
        k.panic(f"Out of memory when creating slab {name}")
    s = KmemCache(k, name, size, 8, None)
    s.addr = addr
    s.node = [None] * k.nr_node_ids
    s.boot = True
    k.cache_by_addr[addr] = s
    create_boot_cache(k, s, name, size, flags, useroffset, usersize)
    k.slab_caches.insert(0, s)
    s.refcount = 1
    k.log_geometry(s)
    return s


def kmem_cache_init(k: Kernel) -> None:
    """The bootstrap on the boot CPU: kmem_cache, the node-structure cache, then every kmalloc cache."""
    kc = KmemCache(k, "kmem_cache", 0, 8, None)
    kc.node = [None] * k.nr_node_ids
    kc.boot = True
    k.kmem_cache = kc
    size = kmem_cache_size_of_struct(k)
    k.log("create", name="kmem_cache", size=size, align=8, flags=SLAB_HWCACHE_ALIGN, ctor=0, via="boot")
    create_boot_cache(k, kc, "kmem_cache", size, SLAB_HWCACHE_ALIGN, 0, 0)
    k.slab_caches.insert(0, kc)
    k.log_geometry(kc)
    k.slab_state = PARTIAL
    index_node = kmalloc_index(SIZEOF_KMEM_CACHE_NODE)
    from .slab.kmalloc import kmalloc_cache_name, kmalloc_info  # noqa: PLC0415
    nsize = kmalloc_info(index_node)[1]
    k.kmalloc_caches[KMALLOC_NORMAL][index_node] = create_kmalloc_cache(
        k, kmalloc_cache_name(KMALLOC_NORMAL, index_node), nsize, SLAB_HWCACHE_ALIGN, 0, nsize)
    k.slab_state = PARTIAL_NODE
    setup_kmalloc_cache_index_table(k)
    # init_list(): the static node structures of the first two caches get kmalloc'd copies
    for nid in k.topo.online_nodes:
        for cachep in (kc, k.kmalloc_caches[KMALLOC_NORMAL][index_node]):
            assert cachep is not None
            addr = kmalloc_node(k, SIZEOF_KMEM_CACHE_NODE, GFP_NOWAIT, nid, internal="init_list")
            if not addr:
                k.panic("kmem_cache_init: no memory for a kmem_cache_node")
            n = cachep.node[nid]
            assert n is not None
            n.addr = addr
    create_kmalloc_caches(k, SLAB_HWCACHE_ALIGN)


def kmem_cache_init_late(k: Kernel) -> None:
    """kmem_cache_init_late(): every cache of slab_caches (those the loop has not reached yet, when
    kmem_cache_init_late_one() began it) gets its real tunables; the slab allocator is FULL."""
    k.log("kmem_cache_init_late")
    caches = k.init_late_pending if k.init_late_pending is not None else list(k.slab_caches)
    k.init_late_pending = []
    for cachep in caches:
        if enable_cpucache(cachep, GFP_NOWAIT):
            k.bug("kernel BUG at mm/slab.c: kmem_cache_init_late: enable_cpucache failed", "kmem_cache_init_late")
    k.slab_state = FULL


def kmem_cache_init_late_one(k: Kernel) -> bool:
    """kmem_cache_init_late()'s loop one step at a time: the next cache of slab_caches (in the list's order
    when the loop began) gets its real tunables, on the boot CPU.  The loop allocates between its steps
    (do_tune_cpucache's per-CPU arrays come from the percpu allocator, which may vmalloc), and a cache the
    loop has not reached still has its boot arrays.  False when the loop is done or has no cache left
    (Kernel.init_late completes it)."""
    if k.init_late_done:
        return False
    if k.init_late_pending is None:
        k.init_late_pending = list(k.slab_caches)
    if not k.init_late_pending:
        return False
    cachep = k.init_late_pending.pop(0)
    saved = k.set_cpu(0)
    try:
        if enable_cpucache(cachep, GFP_NOWAIT):
            k.bug("kernel BUG at mm/slab.c: kmem_cache_init_late: enable_cpucache failed", "kmem_cache_init_late")
    finally:
        k.set_cpu(saved)
    return True


def __kmem_cache_release(k: Kernel, cachep: KmemCache) -> None:
    cache_random_seq_destroy(cachep)
    cachep.cpu_cache = []
    for i, n in enumerate(cachep.node):
        if n is None:
            continue
        if n.shared is not None:
            kfree(k, n.shared.addr, internal="__kmem_cache_release")
        if n.alien is not None:
            free_alien_cache(k, (n.alien_addr, n.alien))
        if n.addr:
            kfree(k, n.addr, internal="__kmem_cache_release")
        cachep.node[i] = None


def kmem_cache_destroy(k: Kernel, s: KmemCache | None) -> None:
    if s is None:
        return
    k.log("destroy", name=s.name, refcount=s.refcount)
    s.refcount -= 1
    if s.refcount:
        return
    if __kmem_cache_shutdown(s):
        # the cache stays on slab_caches with refcount 0 (a later destroy only makes it -1)
        with k.misuse_report("destroy_busy", s, s.addr, check="kmem_cache_destroy"):
            k.printk(f"kmem_cache_destroy {s.name}: Slab cache still has objects")
        return
    k.slab_caches.remove(s)
    s.destroyed = True

    def release() -> None:
        __kmem_cache_release(k, s)
        k.cache_by_addr.pop(s.addr, None)
        kc = k.kmem_cache
        assert kc is not None
        free.kmem_cache_free(kc, s.addr, internal="kmem_cache_destroy")

    if s.flags & SLAB_TYPESAFE_BY_RCU:
        k.rcu_barrier_then(release)
    else:
        release()


def kmem_cache_shrink(k: Kernel, cachep: KmemCache) -> int:
    ret = __kmem_cache_shrink(cachep)
    return ret

