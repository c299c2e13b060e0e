"""CONFIG_DEBUG_SLAB: red zones, poisoning, last-user words, and the checks that use them.

Mirrors mm/slab.c: ``dbg_redzone1``, ``dbg_redzone2``, ``dbg_userword``, ``poison_obj``,
``check_poison_obj``, ``print_objinfo``, ``dump_line``, ``slab_error``, ``verify_redzone_free``,
``cache_free_debugcheck``, ``cache_alloc_debugcheck_after``, ``kfree_debugcheck``,
``slab_destroy_debugcheck``, ``cache_init_objs_debug``, ``fixup_objfreelist_debug``,
``slab_out_of_memory``; the double-free check of ``slab_put_obj``.

The model keeps going where the kernel prints (``slab error``) and raises :class:`KernelBug`
where the kernel calls ``BUG()``; every message goes to the machine's dmesg in the kernel's words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..page import PAGE_OFFSET
from ..slab_def import SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER, KmemCache

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..page import Page

KERNEL_SYMBOLS = ("dbg_redzone1", "dbg_redzone2", "dbg_userword", "poison_obj", "check_poison_obj",
                  "print_objinfo", "dump_line", "slab_error", "verify_redzone_free", "cache_free_debugcheck",
                  "cache_alloc_debugcheck_after", "kfree_debugcheck", "slab_destroy_debugcheck",
                  "cache_init_objs_debug", "fixup_objfreelist_debug", "slab_out_of_memory")

RED_INACTIVE = 0x09F911029D74E35B
RED_ACTIVE = 0xD84156C5635688C0
POISON_INUSE = 0x5A
POISON_FREE = 0x6B
POISON_END = 0xA5


def dbg_redzone1(cachep: KmemCache, objp: int) -> int:
    return objp + cachep.obj_offset - 8


def dbg_redzone2(cachep: KmemCache, objp: int) -> int:
    if cachep.flags & SLAB_STORE_USER:
        return objp + cachep.size - 16
    return objp + cachep.size - 8


def dbg_userword(cachep: KmemCache, objp: int) -> int:
    return objp + cachep.size - 8


def last_user(cachep: KmemCache, objp: int) -> int:
    """The caller stored in the SLAB_STORE_USER word of the object whose stride starts at ``objp`` (0 if none)."""
    if not cachep.flags & SLAB_STORE_USER:
        return 0
    return cachep.k.memory.read_u64(dbg_userword(cachep, objp))


def slab_error(cachep: KmemCache, function: str, msg: str) -> None:
    k = cachep.k
    k.printk(f"slab error in {function}(): cache `{cachep.name}': {msg}")
    k.taint("B")


def poison_obj(cachep: KmemCache, objp: int, val: int) -> None:
    k = cachep.k
    size = cachep.object_size
    data = bytearray([val]) * size
    data[-1] = POISON_END
    k.memory.write(objp + cachep.obj_offset, data)


# print_hex_dump(..., rowsize 16, groupsize 1, ascii): the text column starts after 16 "xx " groups + 1
HEXDUMP_ASCII_COLUMN = 16 * 2 + 16 + 1


def dump_line(k: Kernel, data: bytes, offset: int, limit: int) -> None:
    chunk = data[offset:offset + limit]
    bad = [b for b in chunk if b != POISON_FREE]
    hexpart = " ".join(f"{b:02x}" for b in chunk)
    asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    k.printk(f"{offset:03x}: {hexpart.ljust(HEXDUMP_ASCII_COLUMN)}{asc}")
    if len(bad) == 1:
        err = bad[0] ^ POISON_FREE
        if not err & (err - 1):
            k.printk("Single bit error detected. Probably bad RAM.")
            k.printk("Run memtest86+ or a similar memory test tool.")


def print_objinfo(cachep: KmemCache, objp: int, lines: int) -> None:
    k = cachep.k
    mem = k.memory
    if cachep.flags & SLAB_RED_ZONE:
        r1, r2 = mem.read_u64(dbg_redzone1(cachep, objp)), mem.read_u64(dbg_redzone2(cachep, objp))
        k.printk(f"Redzone: {r1:#x}/{r2:#x}")
    if cachep.flags & SLAB_STORE_USER:
        k.printk(f"Last user: ({k.symbolize(mem.read_u64(dbg_userword(cachep, objp)))})")
    size = cachep.object_size
    data = mem.read(objp + cachep.obj_offset, size)
    i = 0
    while i < size and lines:
        dump_line(k, data, i, min(16, size - i))
        i += 16
        lines -= 1


def check_poison_obj(cachep: KmemCache, objp: int, caller: int = 0) -> bool:
    """Verify POISON_FREE...POISON_END; report damage as the kernel does.  True when intact."""
    k = cachep.k
    size = cachep.object_size
    realobj = objp + cachep.obj_offset
    data = k.memory.read(realobj, size)
    expect = bytes([POISON_FREE]) * (size - 1) + bytes([POISON_END])
    if data == expect:
        return True
    with k.misuse_report("use_after_free", cachep, realobj, check="check_poison_obj",
                         last_user=last_user(cachep, objp), caller=caller):
        lines = 0
        i = 0
        while i < size:
            exp = POISON_END if i == size - 1 else POISON_FREE
            if data[i] != exp:
                if lines == 0:
                    k.printk(f"Slab corruption ({k.print_tainted()}): {cachep.name} start={realobj:016x}, len={size}")
                    print_objinfo(cachep, objp, 0)
                i = (i // 16) * 16
                dump_line(k, data, i, min(16, size - i))
                i += 16
                lines += 1
                if lines > 5:
                    break
            i += 1  # also after a dumped line: the byte just past it is not looked at (as in the kernel)
        page = k.mem_map.virt_to_head_page(objp)
        if page is not None:
            objnr = (objp - page.s_mem) // cachep.size
            if objnr:
                prev = page.s_mem + (objnr - 1) * cachep.size
                k.printk(f"Prev obj: start={prev + cachep.obj_offset:016x}, len={size}")
                print_objinfo(cachep, prev, 2)
            if objnr + 1 < cachep.num:
                nxt = page.s_mem + (objnr + 1) * cachep.size
                k.printk(f"Next obj: start={nxt + cachep.obj_offset:016x}, len={size}")
                print_objinfo(cachep, nxt, 2)
    return False


def kfree_debugcheck(k: Kernel, objp: int) -> None:
    """virt_addr_valid(): a pointer outside the direct map is a BUG."""
    if not (PAGE_OFFSET <= objp < PAGE_OFFSET + (k.page_alloc.max_pfn << 12)):
        msg = f"kfree_debugcheck: out of range ptr {objp:x}h"
        with k.misuse_report("bad_pointer", None, objp, check="kfree_debugcheck"):
            k.printk(msg)
            k.bug(msg, "kfree_debugcheck", objp=objp, line=2679)


def verify_redzone_free(cachep: KmemCache, obj: int, caller: int = 0) -> None:
    """Both red zones must be RED_ACTIVE; report a double free or damage, and carry on."""
    k = cachep.k
    mem = k.memory
    r1 = mem.read_u64(dbg_redzone1(cachep, obj))
    r2 = mem.read_u64(dbg_redzone2(cachep, obj))
    if r1 == RED_ACTIVE and r2 == RED_ACTIVE:
        return
    double = r1 == RED_INACTIVE and r2 == RED_INACTIVE
    kind = "double_free" if double else "overflow"
    with k.misuse_report(kind, cachep, obj + cachep.obj_offset, check="verify_redzone_free",
                         last_user=last_user(cachep, obj), caller=caller):
        slab_error(cachep, "verify_redzone_free",
                   "double free detected" if double else "memory outside object was overwritten")
        k.printk(f"{obj:016x}: redzone 1:{r1:#x}, redzone 2:{r2:#x}")


def cache_free_debugcheck(cachep: KmemCache, objp: int, caller: int) -> int:
    """Checks at free time; returns the start of the object's stride."""
    from .free import virt_to_cache  # noqa: PLC0415
    k = cachep.k
    ex, k.explain = k.explain, None  # narration: the lookup was already shown under kfree/cache_from_obj
    try:
        real = virt_to_cache(k, objp)
    finally:
        k.explain = ex
    if real is not cachep:
        with k.misuse_report("wrong_cache", cachep, objp, check="cache_free_debugcheck", caller=caller):
            k.bug("kernel BUG at mm/slab.c:2711!", "cache_free_debugcheck", cachep.name, objp, line=2711)
    objp -= cachep.obj_offset
    kfree_debugcheck(k, objp)
    page = k.mem_map.virt_to_head_page(objp)
    assert page is not None
    mem = k.memory
    if cachep.flags & SLAB_RED_ZONE:
        verify_redzone_free(cachep, objp, caller)
        mem.write_u64(dbg_redzone1(cachep, objp), RED_INACTIVE)
        mem.write_u64(dbg_redzone2(cachep, objp), RED_INACTIVE)
    if cachep.flags & SLAB_STORE_USER:
        mem.write_u64(dbg_userword(cachep, objp), caller)
    objnr = (objp - page.s_mem) // cachep.size
    bad_line = 2727 if not 0 <= objnr < cachep.num else 2728 if objp != page.s_mem + objnr * cachep.size else 0
    if bad_line:
        with k.misuse_report("bad_pointer", cachep, objp + cachep.obj_offset, check="cache_free_debugcheck",
                             caller=caller):
            k.bug(f"kernel BUG at mm/slab.c:{bad_line}!", "cache_free_debugcheck", cachep.name,
                  objp + cachep.obj_offset, line=bad_line)
    if cachep.flags & SLAB_POISON:
        poison_obj(cachep, objp, POISON_FREE)
    return objp


def cache_alloc_debugcheck_after(cachep: KmemCache, flags: int, objp: int, caller: int) -> int:
    """Checks at allocation time; returns the pointer the caller gets (after red zone 1)."""
    from ..gfp import __GFP_ZERO  # noqa: PLC0415
    k = cachep.k
    mem = k.memory
    if cachep.ctor and flags & __GFP_ZERO:
        k.warn_once("cache_alloc_debugcheck_after:ctor+zero",
                    f"WARNING: CPU: {k.cpu} at mm/slab.c:2992 cache_alloc_debugcheck_after",
                    objp + cachep.obj_offset, kind="ctor_with_gfp_zero", check="cache_alloc_debugcheck_after",
                    cachep=cachep)
    user = last_user(cachep, objp)
    if cachep.flags & SLAB_POISON:
        check_poison_obj(cachep, objp, caller)
        poison_obj(cachep, objp, POISON_INUSE)
    if cachep.flags & SLAB_STORE_USER:
        mem.write_u64(dbg_userword(cachep, objp), caller)
    if cachep.flags & SLAB_RED_ZONE:
        r1 = mem.read_u64(dbg_redzone1(cachep, objp))
        r2 = mem.read_u64(dbg_redzone2(cachep, objp))
        if r1 != RED_INACTIVE or r2 != RED_INACTIVE:
            with k.misuse_report("double_free_or_overflow", cachep, objp + cachep.obj_offset,
                                 check="cache_alloc_debugcheck_after", last_user=user, caller=caller):
                slab_error(cachep, "cache_alloc_debugcheck_after",
                           "double free, or memory outside object was overwritten")
                k.printk(f"{objp:016x}: redzone 1:{r1:#x}, redzone 2:{r2:#x}")
        mem.write_u64(dbg_redzone1(cachep, objp), RED_ACTIVE)
        mem.write_u64(dbg_redzone2(cachep, objp), RED_ACTIVE)
    objp += cachep.obj_offset
    if cachep.ctor and callable(cachep.ctor) and cachep.flags & SLAB_POISON:
        cachep.ctor(objp)
    if objp & 7:
        k.printk(f"0x{objp:016x}: not aligned to ARCH_SLAB_MINALIGN=8")
    return objp


def cache_init_objs_debug(cachep: KmemCache, page: Page) -> None:
    k = cachep.k
    mem = k.memory
    for i in range(cachep.num):
        objp = page.s_mem + i * cachep.size
        if cachep.flags & SLAB_STORE_USER:
            mem.write_u64(dbg_userword(cachep, objp), 0)
        if cachep.flags & SLAB_RED_ZONE:
            mem.write_u64(dbg_redzone1(cachep, objp), RED_INACTIVE)
            mem.write_u64(dbg_redzone2(cachep, objp), RED_INACTIVE)
        if cachep.ctor and callable(cachep.ctor) and not cachep.flags & SLAB_POISON:
            cachep.ctor(objp + cachep.obj_offset)
        if cachep.flags & SLAB_RED_ZONE:
            if mem.read_u64(dbg_redzone2(cachep, objp)) != RED_INACTIVE:
                with k.misuse_report("overflow", cachep, objp + cachep.obj_offset, check="cache_init_objs_debug"):
                    slab_error(cachep, "cache_init_objs_debug", "constructor overwrote the end of an object")
            if mem.read_u64(dbg_redzone1(cachep, objp)) != RED_INACTIVE:
                with k.misuse_report("overflow", cachep, objp + cachep.obj_offset, check="cache_init_objs_debug"):
                    slab_error(cachep, "cache_init_objs_debug", "constructor overwrote the start of an object")
        if cachep.flags & SLAB_POISON:
            poison_obj(cachep, objp, POISON_FREE)


def check_slab_put_obj(cachep: KmemCache, page: Page, objp: int, objnr: int) -> None:
    """The slab_put_obj() double-free check: the index must not already be free (else BUG)."""
    fl = page.fl
    assert fl is not None
    if objnr in fl[page.active:cachep.num]:
        k = cachep.k
        msg = f"slab: double free detected in cache '{cachep.name}', objp {objp:016x}"
        with k.misuse_report("double_free", cachep, objp + cachep.obj_offset, check="slab_put_obj",
                             last_user=last_user(cachep, objp)):
            k.printk(msg)
            k.bug(msg, "slab_put_obj", cache=cachep.name, objp=objp, line=2536)


def fixup_objfreelist_debug(cachep: KmemCache, page: Page) -> None:
    """fixup_objfreelist_debug(): the object that held the freelist gets its poison back."""
    if cachep.flags & SLAB_POISON and page.freelist is not None:
        objp = page.freelist - cachep.obj_offset
        page.freelist = None
        poison_obj(cachep, objp, POISON_FREE)


def slab_destroy_debugcheck(cachep: KmemCache, page: Page) -> None:
    k = cachep.k
    mem = k.memory
    if cachep.OBJFREELIST_SLAB and cachep.flags & SLAB_POISON and page.freelist is not None:
        objp = page.freelist - cachep.obj_offset
        page.freelist = None
        poison_obj(cachep, objp, POISON_FREE)
    for i in range(cachep.num):
        objp = page.s_mem + i * cachep.size
        if cachep.flags & SLAB_POISON:
            check_poison_obj(cachep, objp)
        if cachep.flags & SLAB_RED_ZONE:
            for zone, where in ((dbg_redzone1(cachep, objp), "start"), (dbg_redzone2(cachep, objp), "end")):
                if mem.read_u64(zone) != RED_INACTIVE:
                    with k.misuse_report("overflow", cachep, objp + cachep.obj_offset,
                                         check="slab_destroy_debugcheck", last_user=last_user(cachep, objp)):
                        slab_error(cachep, "slab_destroy_debugcheck", f"{where} of a freed object was overwritten")


def slab_out_of_memory(cachep: KmemCache, gfpflags: int, nodeid: int) -> None:
    from ..gfp import show_gfp_flags  # noqa: PLC0415
    k = cachep.k
    k.printk(f"SLAB: Unable to allocate memory on node {nodeid}, gfp={gfpflags:#x}({show_gfp_flags(gfpflags)})")
    k.printk(f"  cache: {cachep.name}, object size: {cachep.size}, order: {cachep.gfporder}")
    for n in cachep.node:
        if n is None:
            continue
        total = n.total_slabs
        free = n.free_slabs
        k.printk(f"  node {n.nid}: slabs: {total - free}/{total}, objs: {total * cachep.num - n.free_objects}/"
                 f"{total * cachep.num}")
