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


def dump_line(k: Kernel, data: bytes, offset: int, limit: int) -> None:
    chunk = data[offset:offset + limit]
    bad = [b for b in chunk if b != POISON_FREE]
    hexpart = " ".join(f"{b:02x}" for b in chunk)
    asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    k.printk(f"{offset:03x}: {hexpart}  {asc}")
    if len(bad) == 1:
        err = bad[0] ^ POISON_FREE
        if not err & (err - 1):
            k.printk("Single bit error detected. Probably bad RAM.")
            k.printk("Run memtest86+ or a similar memory test tool.")


def print_objinfo(cachep: KmemCache, objp: int, lines: int) -> None:
    k = cachep.k
    mem = k.memory
    if cachep.flags & SLAB_RED_ZONE:
        k.printk(f"Redzone: {mem.read_u64(dbg_redzone1(cachep, objp)):#x}/{mem.read_u64(dbg_redzone2(cachep, objp)):#x}")
    if cachep.flags & SLAB_STORE_USER:
        k.printk(f"Last user: ({k.symbolize(mem.read_u64(dbg_userword(cachep, objp)))})")
    size = cachep.object_size
    data = mem.read(objp + cachep.obj_offset, size)
    i = 0
    while i < size and lines:
        dump_line(k, data, i, min(16, size - i))
        i += 16
        lines -= 1


def check_poison_obj(cachep: KmemCache, objp: int) -> bool:
    """Verify POISON_FREE...POISON_END; report damage as the kernel does.  True when intact."""
    k = cachep.k
    size = cachep.object_size
    realobj = objp + cachep.obj_offset
    data = k.memory.read(realobj, size)
    expect = bytes([POISON_FREE]) * (size - 1) + bytes([POISON_END])
    if data == expect:
        return True
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
            continue
        i += 1
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
    k.report_misuse("poison", cachep, realobj)
    return False


def kfree_debugcheck(k: Kernel, objp: int) -> None:
    if not (PAGE_OFFSET <= objp < PAGE_OFFSET + (k.page_alloc.max_pfn << 12)):
        k.printk(f"kfree_debugcheck: out of range ptr {objp:x}h")
        k.bug(f"kernel BUG at mm/slab.c: kfree_debugcheck: out of range ptr {objp:x}h", "kfree_debugcheck")


def verify_redzone_free(cachep: KmemCache, obj: int) -> None:
    k = cachep.k
    mem = k.memory
    r1 = mem.read_u64(dbg_redzone1(cachep, obj))
    r2 = mem.read_u64(dbg_redzone2(cachep, obj))
    if r1 == RED_ACTIVE and r2 == RED_ACTIVE:
        return
    if r1 == RED_INACTIVE and r2 == RED_INACTIVE:
        slab_error(cachep, "verify_redzone_free", "double free detected")
        kind = "double_free"
    else:
        slab_error(cachep, "verify_redzone_free", "memory outside object was overwritten")
        kind = "redzone"
    k.printk(f"{obj:016x}: redzone 1:{r1:#x}, redzone 2:{r2:#x}")
    k.report_misuse(kind, cachep, obj + cachep.obj_offset)


def cache_free_debugcheck(cachep: KmemCache, objp: int, caller: int) -> int:
    """Checks at free time; returns the start of the object's stride."""
    from .free import virt_to_cache  # noqa: PLC0415
    k = cachep.k
    objp -= cachep.obj_offset
    kfree_debugcheck(k, objp)
    page = k.mem_map.virt_to_head_page(objp)
    if virt_to_cache(k, objp) is not cachep or page is None:
        k.bug(f"kernel BUG at mm/slab.c: cache_free_debugcheck: {objp:#x} is not an object of {cachep.name}",
              "cache_free_debugcheck")
    mem = k.memory
    if cachep.flags & SLAB_RED_ZONE:
        verify_redzone_free(cachep, objp)
        mem.write_u64(dbg_redzone1(cachep, objp), RED_INACTIVE)
        mem.write_u64(dbg_redzone2(cachep, objp), RED_INACTIVE)
    if cachep.flags & SLAB_STORE_USER:
        mem.write_u64(dbg_userword(cachep, objp), caller)
    objnr = (objp - page.s_mem) // cachep.size
    if objnr >= cachep.num or objp != page.s_mem + objnr * cachep.size:
        k.bug(f"kernel BUG at mm/slab.c: cache_free_debugcheck: {objp + cachep.obj_offset:#x} is not the start of "
              f"an object in {cachep.name}", "cache_free_debugcheck")
    if cachep.flags & SLAB_POISON:
        poison_obj(cachep, objp, POISON_FREE)
    return objp


def cache_alloc_debugcheck_after(cachep: KmemCache, flags: int, objp: int, caller: int) -> int:
    """Checks at allocation time; returns the pointer the caller gets (after red zone 1)."""
    k = cachep.k
    mem = k.memory
    if cachep.flags & SLAB_POISON:
        check_poison_obj(cachep, objp)
        poison_obj(cachep, objp, POISON_INUSE)
    if cachep.flags & SLAB_STORE_USER:
        mem.write_u64(dbg_userword(cachep, objp), caller)
    if cachep.flags & SLAB_RED_ZONE:
        r1 = mem.read_u64(dbg_redzone1(cachep, objp))
        r2 = mem.read_u64(dbg_redzone2(cachep, objp))
        if r1 != RED_INACTIVE or r2 != RED_INACTIVE:
            slab_error(cachep, "cache_alloc_debugcheck_after",
                       "double free, or memory outside object was overwritten")
            k.printk(f"{objp:016x}: redzone 1:{r1:#x}, redzone 2:{r2:#x}")
            k.report_misuse("redzone_alloc", cachep, objp + cachep.obj_offset)
        mem.write_u64(dbg_redzone1(cachep, objp), RED_ACTIVE)
        mem.write_u64(dbg_redzone2(cachep, objp), RED_ACTIVE)
    objp += cachep.obj_offset
    if cachep.ctor and callable(cachep.ctor) and cachep.flags & SLAB_POISON:
        cachep.ctor(objp)
    if objp & 7:
        k.printk(f"{objp:#x}: not aligned to ARCH_SLAB_MINALIGN=8")
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
                slab_error(cachep, "cache_init_objs", "constructor overwrote the end of an object")
            if mem.read_u64(dbg_redzone1(cachep, objp)) != RED_INACTIVE:
                slab_error(cachep, "cache_init_objs", "constructor overwrote the start of an object")
        if cachep.flags & SLAB_POISON:
            poison_obj(cachep, objp, POISON_FREE)


def check_slab_put_obj(cachep: KmemCache, page: Page, objp: int, objnr: int) -> None:
    """The slab_put_obj() double-free check: the index must not already be free."""
    fl = page.fl
    assert fl is not None
    if objnr in fl[page.active:cachep.num]:
        k = cachep.k
        msg = f"slab: double free detected in cache '{cachep.name}', objp {objp:016x}"
        k.printk(msg)
        k.report_misuse("double_free", cachep, objp + cachep.obj_offset)
        k.bug(msg, "slab_put_obj", cache=cachep.name, objp=objp)


def repoison_freelist_obj(cachep: KmemCache, page: Page) -> None:
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
            if mem.read_u64(dbg_redzone1(cachep, objp)) != RED_INACTIVE:
                slab_error(cachep, "slab_destroy_debugcheck", "start of a freed object was overwritten")
            if mem.read_u64(dbg_redzone2(cachep, objp)) != RED_INACTIVE:
                slab_error(cachep, "slab_destroy_debugcheck", "end of a freed object was overwritten")


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
