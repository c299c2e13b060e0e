"""CONFIG_DEBUG_SLAB and hardening (spec §7): FORCED_DEBUG, red zones, poisoning, the last-user word,
every detection with the kernel's exact words, init_on_alloc/init_on_free, SLAB_TYPESAFE_BY_RCU.

Layout of the debug cache ``t100`` used below (object_size 100, forced RED_ZONE | STORE_USER | POISON):
stride 8 (red zone 1) + 104 (the object rounded to 8) + 8 (red zone 2) + 8 (last user) = 128 bytes;
the caller's pointer p is stride + 8, red zone 2 is at p + 104, the last-user word at p + 112.
"""

from __future__ import annotations

import pytest
from debughelp import ac, boot, cols

from kslab.mm.errors import KernelBug
from kslab.mm.gfp import __GFP_ZERO, GFP_KERNEL
from kslab.mm.slab_def import (
    SLAB_HWCACHE_ALIGN,
    SLAB_POISON,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
)

RED_INACTIVE = 0x09F911029D74E35B
RED_ACTIVE = 0xD84156C5635688C0
DEBUG = SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_POISON
RZ1 = "0x9f911029d74e35b"  # RED_INACTIVE as 0x%llx
RA = "0xd84156c5635688c0"  # RED_ACTIVE


def dbg(cpus: int = 1, **opts):
    return boot(cpus=cpus, CONFIG_DEBUG_SLAB=True, **opts)


def t100(k):
    c = k.kmem_cache_create("t100", 100)
    assert (c.size, c.obj_offset, c.flags & DEBUG) == (128, 8, DEBUG)
    return c


def u64(k, addr):
    return int.from_bytes(k.read(addr, 8), "little")


def new_lines(k, n):
    return k.dmesg[n:]


# ---- FORCED_DEBUG ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size, flags, want_flags, want_size, obj_offset", [
    (100, 0, DEBUG, 104 + 24, 8),                        # < 4096: red zone + last user + poison
    (8, 0, DEBUG, 32, 8),                                # spec §12.2: 8 rz + 8 obj + 8 rz + 8 user
    (4000, 0, DEBUG, 4024, 8),
    (4096, 0, SLAB_POISON, 4096, 0),                     # fls(4095) = 12 != fls(4095 + 24) = 13
    (8168, 0, DEBUG, 8192, 8),                           # fls(8167) == fls(8191) == 13: 24 bytes still fit
    (8170, 0, SLAB_POISON, 8176, 0),                     # fls(8193) = 14
    (100, SLAB_TYPESAFE_BY_RCU, SLAB_RED_ZONE | SLAB_STORE_USER, 128, 8),  # never forced POISON
    (200, SLAB_HWCACHE_ALIGN, SLAB_POISON, 256, 0),      # align 64 > 8 drops red zone and last user
    (4096, SLAB_RED_ZONE, SLAB_RED_ZONE | SLAB_POISON, 4096 + 16, 8),  # asked for: red zone, no user word
])
def test_forced_debug_rule(size, flags, want_flags, want_size, obj_offset):
    k = dbg(slab_nomerge=True)
    c = k.kmem_cache_create("x", size, flags=flags)
    assert c.flags & DEBUG == want_flags
    assert (c.size, c.obj_offset) == (want_size, obj_offset)


def test_debug_flags_cannot_be_asked_for_without_config_debug_slab():
    k = boot(slab_nomerge=True)
    c = k.kmem_cache_create("x", 100, flags=DEBUG)
    assert c.flags & DEBUG == 0 and c.size == 104


def test_kmalloc_caches_get_poison_only():
    k = dbg()
    c = k.kmalloc_caches[0][6]
    assert c.name == "kmalloc-64" and c.flags & DEBUG == SLAB_POISON and c.size == 64


# ---- red zones, poison, last user: the words and where they are -----------------------------------------


def test_red_zone_poison_and_last_user_layout():
    k = dbg()
    c = t100(k)
    alloc_site, free_site = k.ksym("my_open"), k.ksym("my_release")
    p = k.kmem_cache_alloc(c, caller=alloc_site)
    stride = p - 8
    assert u64(k, stride) == RED_ACTIVE  # red zone 1 just before the object
    assert u64(k, p + 104) == RED_ACTIVE  # red zone 2 at size - 16 (STORE_USER)
    assert u64(k, p + 112) == alloc_site  # last user at size - 8
    assert k.read(p, 100) == b"\x5a" * 99 + b"\xa5"  # POISON_INUSE ... POISON_END
    k.kmem_cache_free(c, p, caller=free_site)
    assert u64(k, stride) == RED_INACTIVE and u64(k, p + 104) == RED_INACTIVE
    assert u64(k, p + 112) == free_site
    assert k.read(p, 100) == b"\x6b" * 99 + b"\xa5"  # POISON_FREE ... POISON_END
    assert not k.misuse and not any("slab error" in line for line in k.dmesg)


def test_red_zone_without_store_user_sits_in_the_last_word():
    k = dbg(slab_nomerge=True)
    c = k.kmem_cache_create("rz", 4096, flags=SLAB_RED_ZONE)
    p = k.kmem_cache_alloc(c)
    assert u64(k, p - 8) == RED_ACTIVE and u64(k, p + 4096) == RED_ACTIVE  # stride - 8 = p + 4096


def test_new_slab_objects_are_poisoned_and_inactive():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    page = k.page_of(p)
    for i in range(c.num):
        obj = page.s_mem + i * c.size
        if obj + 8 == p or obj + 8 == page.freelist:
            continue
        assert u64(k, obj) == RED_INACTIVE and u64(k, obj + 8 + 104) == RED_INACTIVE
        assert u64(k, obj + 8 + 112) == 0  # no user yet
        assert k.read(obj + 8, 100) == b"\x6b" * 99 + b"\xa5"


def test_kmalloc_records_its_caller():
    k = dbg()
    site = k.ksym("foo_probe")
    p = k.kmalloc(50, caller=site)  # kmalloc-64: POISON only, no last-user word
    assert k.read(p, 64) == b"\x5a" * 63 + b"\xa5"
    c = t100(k)
    q = k.kmem_cache_alloc(c, caller=site + 0x10)
    assert u64(k, q + 112) == site + 0x10
    assert k.symbolize(site + 0x10) == "foo_probe+0x10/0x100"


def test_bulk_entry_points_record_their_caller():
    k = dbg()
    c = t100(k)
    site = k.ksym("bulk_user")
    objs = k.kmem_cache_alloc_bulk(c, 3, caller=site)
    assert [u64(k, p + 112) for p in objs] == [site] * 3
    k.kmem_cache_free_bulk(c, objs, caller=site + 4)
    assert [u64(k, p + 112) for p in objs] == [site + 4] * 3


# ---- double free ---------------------------------------------------------------------------------------


def test_double_free_red_zone_message_then_bug_in_free_block():
    k = dbg()
    c = t100(k)
    first, second = k.ksym("first_put"), k.ksym("second_put")
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p, caller=first)
    n = len(k.dmesg)
    k.kmem_cache_free(c, p, caller=second)  # red zones already INACTIVE
    stride = f"{p - 8:016x}"
    assert new_lines(k, n) == [
        "slab error in verify_redzone_free(): cache `t100': double free detected",
        f"{stride}: redzone 1:{RZ1}, redzone 2:{RZ1}",
    ]
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.cache, rec.ptr, rec.cpu) == ("double_free", "verify_redzone_free", "t100", p, 0)
    assert rec.last_user == first and rec.caller == second and rec.messages == new_lines(k, n)
    assert "B" in k.print_tainted()
    # processing continued: both copies are in the array; the second one to reach its slab is a BUG
    assert ac(c, 0)[-2:] == [p - 8, p - 8]
    n = len(k.dmesg)
    msg = f"slab: double free detected in cache 't100', objp {stride}"
    with pytest.raises(KernelBug) as e:
        k.kmem_cache_shrink(c)
    assert str(e.value) == msg and e.value.function == "slab_put_obj"
    assert new_lines(k, n) == [msg, "------------[ cut here ]------------", "kernel BUG at mm/slab.c:2536!"]
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.ptr, rec.last_user) == ("double_free", "slab_put_obj", p, second)
    assert rec.messages == new_lines(k, n)
    # the machine stays inspectable
    assert "t100" in k.slabinfo() and k.dmesg[-1].startswith("kernel BUG")


def test_double_free_then_reallocation_is_caught_at_allocation():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p)
    k.kmem_cache_free(c, p)
    assert k.kmem_cache_alloc(c) == p  # first copy: poison and red zones look fine
    n = len(k.dmesg)
    assert k.kmem_cache_alloc(c) == p  # second copy: now in use (0x5a, RED_ACTIVE)
    lines = new_lines(k, n)
    assert lines[0] == f"Slab corruption (Tainted: G    B            ): t100 start={p:016x}, len=100"
    assert lines[1] == f"Redzone: {RA}/{RA}"
    assert "slab error in cache_alloc_debugcheck_after(): cache `t100': double free, or memory outside object was" \
           " overwritten" in lines
    assert lines[-1] == f"{p - 8:016x}: redzone 1:{RA}, redzone 2:{RA}"
    assert [r.kind for r in k.misuse[-2:]] == ["use_after_free", "double_free_or_overflow"]
    assert k.misuse[-2].messages + k.misuse[-1].messages == lines


# ---- write after free: poison -------------------------------------------------------------------------


def _freed_t100(k):
    c = t100(k)
    objs = [k.kmem_cache_alloc(c) for _ in range(3)]
    p = objs[1]  # has neighbours on both sides in its slab
    k.kmem_cache_free(c, p, caller=k.ksym("my_release"))
    return c, p


def test_write_after_free_reported_at_next_allocation():
    k = dbg()
    c, p = _freed_t100(k)
    k.write(p + 20, b"\x00\x00")  # use after free
    n = len(k.dmesg)
    assert k.kmem_cache_alloc(c, caller=k.ksym("my_open")) == p
    prev_obj = p - 128
    next_obj = p + 128
    assert new_lines(k, n) == [
        f"Slab corruption (Not tainted): t100 start={p:016x}, len=100",
        f"Redzone: {RZ1}/{RZ1}",
        "Last user: (my_release+0x0/0x100)",
        "010: 6b 6b 6b 6b 00 00 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkk..kkkkkkkkkk",
        f"Prev obj: start={prev_obj:016x}, len=100",
        f"Redzone: {RA}/{RA}",
        "Last user: (0x0)",
        "000: " + "5a " * 15 + "5a  " + "Z" * 16,
        "010: " + "5a " * 15 + "5a  " + "Z" * 16,
        f"Next obj: start={next_obj:016x}, len=100",
        f"Redzone: {RA}/{RA}",
        "Last user: (0x0)",
        "000: " + "5a " * 15 + "5a  " + "Z" * 16,
        "010: " + "5a " * 15 + "5a  " + "Z" * 16,
    ]
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.ptr, rec.last_user) == ("use_after_free", "check_poison_obj", p,
                                                             k.ksym("my_release"))
    assert rec.caller == k.ksym("my_open") and rec.messages == new_lines(k, n)
    # the object is handed out anyway, poisoned as in use
    assert k.read(p, 100) == b"\x5a" * 99 + b"\xa5"


def test_single_bit_error_message():
    k = dbg()
    c, p = _freed_t100(k)
    k.write(p + 3, bytes([0x6B ^ 0x04]))
    n = len(k.dmesg)
    k.kmem_cache_alloc(c)
    lines = new_lines(k, n)
    assert lines[3:6] == [
        "000: 6b 6b 6b 6f 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkokkkkkkkkkkkk",
        "Single bit error detected. Probably bad RAM.",
        "Run memtest86+ or a similar memory test tool.",
    ]


def test_two_bit_error_or_two_bad_bytes_is_not_a_single_bit_error():
    k = dbg()
    c, p = _freed_t100(k)
    k.write(p + 3, bytes([0x6B ^ 0x06]))
    k.write(p + 97, bytes([0x6B ^ 0x01]))  # last line: 3 poison bytes and POISON_END, which differs too
    n = len(k.dmesg)
    k.kmem_cache_alloc(c)
    lines = new_lines(k, n)
    assert "Single bit error detected. Probably bad RAM." not in lines
    # a short last line: the text column still starts at column 49 of the dump
    assert lines[4] == "060: 6b 6a 6b a5" + " " * (49 - 11) + "kjk."


def test_poison_report_dumps_at_most_six_lines():
    k = dbg(slab_nomerge=True)
    c = k.kmem_cache_create("t256", 256)
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p)
    for line in range(16):
        k.write(p + line * 16 + 5, b"!")
    n = len(k.dmesg)
    k.kmem_cache_alloc(c)
    lines = new_lines(k, n)
    report = lines[:next(i for i, ln in enumerate(lines) if ln.startswith("Prev obj:"))]
    dumps = [ln[:4] for ln in report if ln[3:5] == ": "]
    assert dumps == ["000:", "010:", "020:", "030:", "040:", "050:"]


def test_poison_scan_skips_the_byte_after_a_dumped_line():
    # check_poison_obj() jumps to the end of the dumped line and its loop then steps once more:
    # the first byte of the next line is never looked at.
    k = dbg()
    c, p = _freed_t100(k)
    k.write(p + 2, b"!")
    k.write(p + 16, b"!")
    n = len(k.dmesg)
    k.kmem_cache_alloc(c)
    lines = new_lines(k, n)
    assert lines[3].startswith("000: 6b 6b 21 6b") and lines[4].startswith("Prev obj:")


# ---- overflow: red zones ---------------------------------------------------------------------------------


def test_overflow_into_red_zone_2_reported_at_free():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c, caller=k.ksym("my_open"))
    k.write(p + 100, b"pad!")  # the 4 bytes of rounding padding: not checked
    k.memset(p + 104, 0x41, 2)  # into red zone 2
    n = len(k.dmesg)
    k.kmem_cache_free(c, p, caller=k.ksym("my_release"))
    assert new_lines(k, n) == [
        "slab error in verify_redzone_free(): cache `t100': memory outside object was overwritten",
        f"{p - 8:016x}: redzone 1:{RA}, redzone 2:0xd84156c563564141",
    ]
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.last_user, rec.caller) == ("overflow", "verify_redzone_free",
                                                                 k.ksym("my_open"), k.ksym("my_release"))
    # processing continued: the object is free and its red zones are INACTIVE again
    assert ac(c, 0)[-1] == p - 8 and u64(k, p + 104) == RED_INACTIVE


def test_underflow_into_red_zone_1_reported_at_free():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    k.write(p - 1, b"\x00")
    n = len(k.dmesg)
    k.kmem_cache_free(c, p)
    # the top byte of the little-endian word is gone
    assert new_lines(k, n)[1] == f"{p - 8:016x}: redzone 1:0x4156c5635688c0, redzone 2:{RA}"


def test_overflow_into_the_next_free_object_reported_when_it_is_allocated():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    q = k.kmem_cache_alloc(c)  # the array hands out descending addresses: q = p - 128
    assert q == p - 128
    k.kmem_cache_free(c, p)
    k.memset(q + 100, 0, 28)  # past q's own red zone 2 and user word, up to the end of p's red zone 1
    n = len(k.dmesg)
    assert k.kmem_cache_alloc(c) == p
    lines = new_lines(k, n)
    assert lines == [
        "slab error in cache_alloc_debugcheck_after(): cache `t100': double free, or memory outside object was"
        " overwritten",
        f"{p - 8:016x}: redzone 1:0x0, redzone 2:{RZ1}",
    ]
    assert k.misuse[-1].kind == "double_free_or_overflow"


def test_constructor_overwriting_the_end_of_an_object():
    k = dbg(slab_nomerge=True)

    def ctor(obj):
        k.memset(obj, 0, 112)  # 8 bytes too many: red zone 2 of a 104-byte object

    c = k.kmem_cache_create("ctor", 104, flags=SLAB_TYPESAFE_BY_RCU, ctor=ctor)  # RCU: no poison, ctor per slab
    n = len(k.dmesg)
    p = k.kmem_cache_alloc(c)
    lines = new_lines(k, n)
    # once per object of the new slab, then the allocation finds red zone 2 still damaged
    assert lines[:c.num] == ["slab error in cache_init_objs_debug(): cache `ctor': constructor overwrote the end"
                             " of an object"] * c.num
    assert lines[c.num:] == [
        "slab error in cache_alloc_debugcheck_after(): cache `ctor': double free, or memory outside object was"
        " overwritten",
        f"{p - 8:016x}: redzone 1:{RZ1}, redzone 2:0x0",
    ]
    assert [r.kind for r in k.misuse] == ["overflow"] * c.num + ["double_free_or_overflow"]


# ---- bad pointers and the wrong cache ----------------------------------------------------------------


def test_kfree_of_a_non_slab_pointer_warns_once():
    k = dbg()
    page = k.page_alloc.alloc_pages_node(0, GFP_KERNEL, 0, 0)
    n = len(k.dmesg)
    k.kfree(page.address + 64)
    k.kfree(page.address + 128)
    assert new_lines(k, n) == ["virt_to_cache: Object is not a Slab page!"]
    assert [(r.kind, r.check) for r in k.misuse] == [("not_slab", "virt_to_cache")] * 2
    assert k.misuse[0].messages == ["virt_to_cache: Object is not a Slab page!"] and k.misuse[1].messages == []
    assert "W" in k.print_tainted()


def test_kfree_of_an_address_outside_the_direct_map_is_a_bug():
    k = dbg()
    with pytest.raises(KernelBug, match=r"^kfree_debugcheck: out of range ptr ffffc90000001000h$"):
        k.kfree(0xFFFFC90000001000)
    assert k.dmesg[-3:] == ["kfree_debugcheck: out of range ptr ffffc90000001000h",
                            "------------[ cut here ]------------", "kernel BUG at mm/slab.c:2679!"]
    assert k.misuse[-1].kind == "bad_pointer"


def test_kfree_of_a_pointer_inside_an_object_is_a_bug():
    k = dbg()
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    with pytest.raises(KernelBug, match=r"^kernel BUG at mm/slab.c:2728!$"):
        k.kfree(p + 8)
    # its "red zone 1" is the object's first word, its "red zone 2" the real user word: reported first
    assert k.dmesg[-4:-2] == ["slab error in verify_redzone_free(): cache `t100': memory outside object was"
                              " overwritten", f"{p:016x}: redzone 1:0x5a5a5a5a5a5a5a5a, redzone 2:0x0"]
    assert [r.kind for r in k.misuse] == ["overflow", "bad_pointer"]


def test_wrong_cache_hardened_warns_and_frees_to_the_real_cache():
    k = boot(CONFIG_SLAB_FREELIST_HARDENED=True, slab_nomerge=True)
    a = k.kmem_cache_create("a", 100)
    b = k.kmem_cache_create("b", 100)
    p = k.kmem_cache_alloc(a)
    n = len(k.dmesg)
    k.kmem_cache_free(b, p)
    assert new_lines(k, n) == ["cache_from_obj: Wrong slab cache. b but object is from a"]
    assert ac(a, 0)[-1] == p and ac(b, 0) == []
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.cache, rec.ptr) == ("wrong_cache", "cache_from_obj", "a", p)
    k.check()


def test_wrong_cache_debug_without_hardened_is_a_bug():
    k = dbg(slab_nomerge=True)
    a = k.kmem_cache_create("a", 100)
    b = k.kmem_cache_create("b", 100)
    p = k.kmem_cache_alloc(a)
    with pytest.raises(KernelBug, match=r"^kernel BUG at mm/slab.c:2711!$"):
        k.kmem_cache_free(b, p)
    assert k.misuse[-1].kind == "wrong_cache" and k.misuse[-1].check == "cache_free_debugcheck"


def test_hardened_drops_a_back_to_back_double_free():
    k = boot(CONFIG_SLAB_FREELIST_HARDENED=True)
    c = k.kmalloc_caches[0][7]
    p = k.kmalloc(100)
    k.kfree(p)
    n = len(k.dmesg)
    k.kfree(p)
    assert ac(c, 0).count(p) == 1
    assert new_lines(k, n) == ["WARNING: CPU: 0 at mm/slab.c:596 __free_one"]
    k.kfree(p)  # WARN_ON_ONCE: silent now, still dropped, still recorded
    assert new_lines(k, n) == ["WARNING: CPU: 0 at mm/slab.c:596 __free_one"] and ac(c, 0).count(p) == 1
    assert [(r.kind, r.check, r.ptr) for r in k.misuse] == [("double_free", "__free_one", p)] * 2
    assert k.kmem_cache_shrink(c) in (0, 1)  # no BUG later: the array holds one copy


def test_hardened_and_debug_double_free_reported_then_dropped():
    k = dbg(CONFIG_SLAB_FREELIST_HARDENED=True)
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p)
    k.kmem_cache_free(c, p)  # the red-zone check comes first, then __free_one drops it
    assert [r.check for r in k.misuse] == ["verify_redzone_free", "__free_one"]
    assert ac(c, 0).count(p - 8) == 1
    k.kmem_cache_shrink(c)  # no BUG: only one copy reaches the slab
    k.check()


# ---- init_on_alloc / init_on_free ----------------------------------------------------------------------


def test_init_on_free_zeroes_object_size_bytes():
    k = boot(init_on_free=True, slab_nomerge=True)
    c = k.kmem_cache_create("t100", 100)
    p = k.kmem_cache_alloc(c)
    k.memset(p, 0xFF, c.size)
    k.kmem_cache_free(c, p)
    assert k.read(p, 100) == bytes(100)  # object_size bytes zeroed ...
    assert k.read(p + 100, 4) == b"\xff" * 4  # ... not the padding up to size 104


def test_init_on_free_skips_caches_with_a_ctor_or_rcu():
    k = boot(init_on_free=True, slab_nomerge=True)
    r = k.kmem_cache_create("r", 100, flags=SLAB_TYPESAFE_BY_RCU)
    p = k.kmem_cache_alloc(r)
    k.memset(p, 0xFF, 100)
    k.kmem_cache_free(r, p)
    assert k.read(p, 100) == b"\xff" * 100


def test_init_on_free_changes_freelist_placement():
    # spec §12.2: kmalloc-64 64/64 objfreelist by default, 64/63 on-slab with init_on_free=1;
    # kmalloc-96 becomes off-slab
    plain, zeroing = boot(), boot(init_on_free=True)
    c, z = plain.kmalloc_caches[0][6], zeroing.kmalloc_caches[0][6]
    assert (c.num, c.placement) == (64, "objfreelist")
    assert (z.num, z.placement) == (63, "on-slab")
    assert zeroing.kmalloc_caches[0][1].placement == "off-slab"


def test_init_on_free_leaves_poisoned_caches_alone():
    k = dbg(init_on_free=True)
    c = t100(k)
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p)
    assert k.read(p, 100) == b"\x6b" * 99 + b"\xa5"


def test_init_on_alloc_zeroes_object_size_bytes():
    k = boot(init_on_alloc=True)
    p = k.kmalloc(64)
    k.memset(p, 0xFF, 64)
    k.kfree(p)
    assert k.read(p, 64) == b"\xff" * 64  # init_on_free is off
    assert k.kmalloc(64) == p and k.read(p, 64) == bytes(64)


def test_without_init_on_alloc_old_contents_stay_unless_gfp_zero():
    k = boot()
    p = k.kmalloc(64)
    k.memset(p, 0xFF, 64)
    k.kfree(p)
    assert k.kmalloc(64) == p and k.read(p, 64) == b"\xff" * 64
    k.kfree(p)
    assert k.kmalloc(64, GFP_KERNEL | __GFP_ZERO) == p and k.read(p, 64) == bytes(64)


def test_init_on_alloc_poisoned_cache_only_with_gfp_zero():
    k = dbg(init_on_alloc=True)
    p = k.kmalloc(64)
    assert k.read(p, 64) == b"\x5a" * 63 + b"\xa5"
    q = k.kzalloc(64)
    assert k.read(q, 64) == bytes(64)


# ---- the records -------------------------------------------------------------------------------------------


def test_every_report_line_belongs_to_exactly_one_record():
    k = dbg()
    c, p = _freed_t100(k)
    start = len(k.dmesg)
    k.write(p, b"x")
    q = k.kmem_cache_alloc(c)  # poison report
    k.memset(q + 104, 0, 1)
    k.kmem_cache_free(c, q)  # red zone report
    k.kmem_cache_free(c, q)  # double free report
    assert len(k.misuse) == 3
    assert [line for r in k.misuse for line in r.messages] == k.dmesg[start:]
    assert cols(k, "t100")[0] >= 2
