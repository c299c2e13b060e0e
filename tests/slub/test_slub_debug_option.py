"""slab_debug= parsing and kmem_cache_flags (mm/slub.c, 6.12)."""

from __future__ import annotations

from kslab.mm.slub.debug import kmem_cache_flags, setup_slub_debug
from kslab.mm.slub.flags import (
    DEBUG_DEFAULT_FLAGS,
    SLAB_CONSISTENCY_CHECKS,
    SLAB_FAILSLAB,
    SLAB_NO_USER_FLAGS,
    SLAB_NOLEAKTRACE,
    SLAB_POISON,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TRACE,
)


def test_not_given_and_bare() -> None:
    assert setup_slub_debug(None).slub_debug == 0 and not setup_slub_debug(None).slub_debug_enabled
    bare = setup_slub_debug("")
    assert bare.slub_debug == DEBUG_DEFAULT_FLAGS and bare.slub_debug_enabled
    assert kmem_cache_flags(bare, 0, "any") == DEBUG_DEFAULT_FLAGS


def test_global_letters() -> None:
    d = setup_slub_debug("fZpUt")
    assert d.slub_debug == SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE
    assert d.slub_debug_string is None
    assert setup_slub_debug("ZP-U").slub_debug == SLAB_STORE_USER  # '-' clears what came before
    assert setup_slub_debug("A").slub_debug == SLAB_FAILSLAB == 0  # CONFIG_FAILSLAB is off


def test_slab_list_limits_the_flags() -> None:
    d = setup_slub_debug("U,dentry,kmalloc-*")
    assert d.slub_debug == 0 and d.slub_debug_enabled and d.slub_debug_string == "U,dentry,kmalloc-*"
    assert kmem_cache_flags(d, 0, "dentry") == SLAB_STORE_USER
    assert kmem_cache_flags(d, 0, "dentry2") == 0  # no glob: the whole name must match
    assert kmem_cache_flags(d, 0, "kmalloc-rcl-64") == SLAB_STORE_USER
    assert kmem_cache_flags(d, 0, "dma-kmalloc-64") == 0


def test_blocks_and_a_global_block() -> None:
    d = setup_slub_debug("Z,foo;P,bar;F")
    assert d.slub_debug == SLAB_CONSISTENCY_CHECKS
    assert kmem_cache_flags(d, 0, "foo") == SLAB_RED_ZONE  # the first matching block wins, not the global
    assert kmem_cache_flags(d, 0, "bar") == SLAB_POISON
    assert kmem_cache_flags(d, 0, "baz") == SLAB_CONSISTENCY_CHECKS


def test_list_without_letters_means_full_debugging() -> None:
    d = setup_slub_debug(",foo")
    assert kmem_cache_flags(d, 0, "foo") == DEBUG_DEFAULT_FLAGS
    assert kmem_cache_flags(d, 0, "bar") == 0


def test_noleaktrace_and_no_user_flags() -> None:
    d = setup_slub_debug("ZU")
    assert kmem_cache_flags(d, SLAB_NOLEAKTRACE, "kmemleak") == SLAB_NOLEAKTRACE | SLAB_RED_ZONE
    assert kmem_cache_flags(d, SLAB_NO_USER_FLAGS, "kunit") == SLAB_NO_USER_FLAGS


def test_o_and_unknown_letters() -> None:
    d = setup_slub_debug("ZOxq")
    assert d.disable_higher_order_debug and d.slub_debug == SLAB_RED_ZONE and d.unknown == ("x", "q")
