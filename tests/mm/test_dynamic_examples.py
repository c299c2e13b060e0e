"""The worked dynamic examples of spec §12.3 (private 64-byte cache, 2 CPUs) and §12.4 (8 KiB objects)."""

from __future__ import annotations

from slabhelp import ac, boot, cols, locate, node

HZ = 1000


def _t64():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64, 0, 0)
    assert t is not None and t.name == "t64"
    assert (t.size, t.num, t.placement, t.limit, t.batchcount, t.shared) == (64, 64, "objfreelist", 120, 60, 8)
    assert node(t).shared.limit == 480
    assert node(t).free_limit == 3 * 60 + 64
    return k, t


def test_12_3_table_row_by_row():
    k, t = _t64()
    slabs = []  # A, B, C, D in creation order

    def name(obj):
        page, idx = locate(k, t, obj)
        if page not in slabs:
            slabs.append(page)
        return "ABCD"[slabs.index(page)] + str(idx)

    # alloc #1: untouched array: batch 16, grows A, returns A15
    objs = [k.kmem_cache_alloc(t, cpu=0)]
    assert name(objs[0]) == "A15"
    assert cols(k, "t64") == (16, 64, 1, 1, 0)
    assert len(ac(t, 0)) == 15
    # alloc #2..#16: A14 ... A0
    for want in range(14, -1, -1):
        objs.append(k.kmem_cache_alloc(t, cpu=0))
        assert name(objs[-1]) == f"A{want}"
    assert cols(k, "t64") == (16, 64, 1, 1, 0)
    assert len(ac(t, 0)) == 0
    # alloc #17: refill 60, A has 48 free: takes A16..A63, no grow, returns A63
    objs.append(k.kmem_cache_alloc(t, cpu=0))
    assert name(objs[-1]) == "A63"
    assert cols(k, "t64") == (64, 64, 1, 1, 0)
    assert len(ac(t, 0)) == 47
    objs.append(k.kmem_cache_alloc(t, cpu=0))
    assert name(objs[-1]) == "A62"
    assert len(ac(t, 0)) == 46
    # ... to 200 allocations; refills 16, 48, 60, 4, 60, 4, 60
    refills = [16, 48]
    prev_misses = t.stats.allocmiss
    while len(objs) < 200:
        before = len(ac(t, 0))
        objs.append(k.kmem_cache_alloc(t, cpu=0))
        if before == 0:
            refills.append(len(ac(t, 0)) + 1)
    assert refills == [16, 48, 60, 4, 60, 4, 60]
    assert t.stats.allocmiss - prev_misses == 5
    assert cols(k, "t64") == (252, 256, 4, 4, 0)
    assert len(ac(t, 0)) == 52
    assert len({name(o) for o in objs}) == 200 and len(slabs) == 4
    # the fresh slabs B, C, D handed out 59, 63 (the 4-object top-ups), 59 first
    assert [name(objs[i]) for i in (64, 124, 128, 188, 192)] == ["B59", "B63", "C59", "C63", "D59"]
    assert n_free(k, t) == 4

    # free all 200 in allocation order: 3 flushes of the 60 oldest to the shared array
    for o in objs:
        k.kmem_cache_free(t, o, cpu=0)
    assert cols(k, "t64") == (252, 256, 4, 4, 180)
    assert len(ac(t, 0)) == 72
    assert t.stats.freemiss == 3

    n = node(t)
    # reap 1: node part due; ac0 touched: only cleared; shared untouched: 96 freed; free_touched cleared
    assert ac_touched(t, 0) == 1 and n.shared.touched == 0 and n.free_touched == 1
    n.next_reap = k.jiffies
    k.run_cache_reap(0)
    assert cols(k, "t64") == (156, 256, 4, 4, 84)
    assert len(ac(t, 0)) == 72
    assert ac_touched(t, 0) == 0 and n.free_touched == 0
    assert n.next_reap == k.jiffies + 4 * HZ
    # reap 2 (2 s later): CPU part only: 24 oldest freed
    k.jiffies += 2 * HZ
    k.run_cache_reap(0)
    assert cols(k, "t64") == (132, 256, 4, 4, 84)
    assert len(ac(t, 0)) == 48
    # reap 3: node part: shared (84 + 1) / 2 = 42 freed; drain_freelist ceil(244 / 320) = 1 slab
    k.jiffies += 2 * HZ
    k.run_cache_reap(0)
    assert cols(k, "t64") == (66, 192, 3, 3, 42)
    assert len(ac(t, 0)) == 24
    assert t.stats.reaped == 1
    # reap 4: CPU part: the remaining 24
    k.jiffies += 2 * HZ
    k.run_cache_reap(0)
    assert cols(k, "t64") == (42, 192, 1, 3, 42)
    assert len(ac(t, 0)) == 0
    # reap 5: node: 21 from shared, 1 slab
    k.jiffies += 2 * HZ
    k.run_cache_reap(0)
    assert cols(k, "t64") == (21, 128, 1, 2, 21)
    assert len(ac(t, 0)) == 0
    assert t.stats.reaped == 2
    k.check()
    # shrink: everything goes
    assert k.kmem_cache_shrink(t) == 0
    assert cols(k, "t64") == (0, 0, 0, 0, 0)
    k.check()


def n_free(k, t):
    return node(t).free_objects


def ac_touched(t, cpu):
    return t.cpu_cache[cpu].touched


def test_12_3_shrink_at_any_point():
    for stop in (1, 17, 100, 200):
        k, t = _t64()
        objs = [k.kmem_cache_alloc(t) for _ in range(200)]
        for o in objs[:stop]:
            k.kmem_cache_free(t, o)
        live = 200 - stop
        k.kmem_cache_shrink(t)
        # after shrink only truly allocated objects are active and no empty slab is left
        a, _n_objs, a_sl, n_sl, sh = cols(k, "t64")
        assert (a, sh) == (live, 0)
        assert a_sl == n_sl
        assert len(ac(t, 0)) == 0
        for o in objs[stop:]:
            k.kmem_cache_free(t, o)
        k.kmem_cache_shrink(t)
        assert cols(k, "t64") == (0, 0, 0, 0, 0)
        k.check()


def test_12_4_free_limit_trimming():
    k = boot(cpus=2)
    c = k.kmem_cache_create("big8k", 8192)
    assert (c.size, c.num, c.gfporder, c.limit, c.batchcount, c.shared) == (8192, 1, 1, 8, 4, 0)
    assert node(c).free_limit == 13
    pages_before = k.page_alloc.nr_allocated_pages
    objs = [k.kmem_cache_alloc(c, cpu=0) for _ in range(30)]
    assert cols(k, "big8k") == (30, 30, 30, 30, 0)
    assert c.stats.grown == 30
    assert k.page_alloc.nr_allocated_pages - pages_before == 60
    destroyed = []
    prev_hook = k.page_alloc.hooks.on_page_free

    def hook(page, order):
        destroyed.append((page.pfn, order))
        if prev_hook is not None:
            prev_hook(page, order)

    k.page_alloc.hooks.on_page_free = hook
    history = []
    for o in objs:
        k.kmem_cache_free(c, o, cpu=0)
        history.append((len(ac(c, 0)), node(c).free_objects, node(c).total_slabs))
    k.page_alloc.hooks.on_page_free = prev_hook
    # first 8 fill the array; the 9th flushes 4 (free_block), and so on every 4th free
    assert [h[0] for h in history] == [1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8,
                                       5, 6, 7, 8, 5, 6]
    free_objs = [h[1] for h in history]
    assert free_objs[8] == 4 and free_objs[12] == 8 and free_objs[16] == 12
    assert free_objs[20] == 13 and free_objs[24] == 13 and free_objs[28] == 13  # 16 -> 13, 17 -> 13, 17 -> 13
    assert [h[2] for h in history][-1] == 19
    assert cols(k, "big8k") == (6, 19, 6, 19, 0)
    assert len(destroyed) == 11 and all(order == 1 for _, order in destroyed)
    assert k.page_alloc.nr_allocated_pages - pages_before == 38
    assert c.stats.freemiss == 6 and c.stats.freehit == 24
    k.check()
