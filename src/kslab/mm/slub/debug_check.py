"""SLUB_DEBUG's object checks and reports (mm/slub.c, 6.12): red zones, poison, padding, the free list, tracking.

The bytes SLUB_DEBUG writes and checks (red zones 0xbb/0xcc, poison 0x6b/0xa5, padding 0x5a) live in
:class:`DebugMemory`, one bytearray per debug slab; the free pointers stay in the model's ObjectMemory words.
A report goes to dmesg line by line as pr_err prints it, with the addresses unhashed (as with
``no_hash_pointers``); the tracking records carry the caller, the CPU, pid 0 and time 0 (the model has
neither tasks nor jiffies).  Functions keep the kernel's names; none of them prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ..config import PAGE_SIZE
from .fastpath import get_freepointer, set_freepointer
from .flags import __OBJECT_POISON, SLAB_CONSISTENCY_CHECKS, SLAB_KMALLOC, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER
from .geometry import freeptr_outside_object, get_info_end, order_objects, slub_debug_orig_size
from .slab import ObjectMemory, Slab
from .slub_def import MAX_OBJS_PER_PAGE, SIZEOF_TRACK, SIZEOF_VOID_P, KmemCache

KERNEL_SYMBOLS_612 = ("check_valid_pointer", "print_section", "print_track", "print_tracking", "print_slab_info",
                      "slab_bug", "slab_fix", "print_trailer", "object_err", "slab_err", "init_object",
                      "restore_bytes", "check_bytes_and_report", "check_pad_bytes", "slab_pad_check", "check_object",
                      "check_slab", "on_freelist", "set_track", "init_tracking", "size_from_object")

SLUB_RED_INACTIVE: Final = 0xBB
SLUB_RED_ACTIVE: Final = 0xCC
POISON_INUSE: Final = 0x5A
POISON_FREE: Final = 0x6B
POISON_END: Final = 0xA5
TRACK_ALLOC: Final = 0
TRACK_FREE: Final = 1
#: print_tainted() before and after the first report (TAINT_BAD_PAGE, 'B', of the 19 taint flags of 6.12)
NOT_TAINTED: Final = "Not tainted"
TAINTED_B: Final = "Tainted: G    B             "
BUG_RULE: Final = "=" * 77
BUG_SUBRULE: Final = "-" * 77


@dataclass(slots=True)
class Track:
    """struct track: who allocated or freed the object (addr: the caller, _RET_IP_)."""

    addr: int
    cpu: int
    pid: int = 0
    when: int = 0


@dataclass(slots=True, eq=False)
class DebugMemory:
    """The bytes of debug slabs (by head pfn), the tracking records and kmalloc request sizes (by object), the
    current call's caller, cpu and kmalloc size (0: kmem_cache_alloc, the object size), the object
    get_partial_node took (partial_context.object), whether the kernel is tainted, and dmesg."""

    slabs: dict[int, bytearray] = field(default_factory=dict)
    tracks: dict[int, list[Track | None]] = field(default_factory=dict)
    orig_size: dict[int, int] = field(default_factory=dict)
    caller: int = 0
    cpu: int = 0
    request: int = 0
    object: int = 0
    tainted: bool = False
    dmesg: list[str] = field(default_factory=list)


def _view(dm: DebugMemory, slab: Slab) -> bytearray:
    return dm.slabs[slab.page.pfn]


def read_bytes(dm: DebugMemory, slab: Slab, addr: int, n: int) -> bytes:
    off = addr - slab.address
    return bytes(_view(dm, slab)[off:off + n])


def write_bytes(dm: DebugMemory, slab: Slab, addr: int, data: bytes) -> None:
    off = addr - slab.address
    _view(dm, slab)[off:off + len(data)] = data


def _fill(dm: DebugMemory, slab: Slab, addr: int, value: int, n: int) -> None:
    if n > 0:
        write_bytes(dm, slab, addr, bytes([value]) * n)


def size_from_object(s: KmemCache) -> int:
    """The object's stride without the left red zone."""
    return s.size - s.red_left_pad if s.flags & SLAB_RED_ZONE else s.size


def check_valid_pointer(s: KmemCache, slab: Slab, obj: int) -> bool:
    """NULL, or the start of one of the slab's objects."""
    if not obj:
        return True
    base = slab.address
    obj -= s.red_left_pad if s.flags & SLAB_RED_ZONE else 0
    return base <= obj < base + slab.objects * s.size and not (obj - base) % s.size


def print_section(dm: DebugMemory, slab: Slab, text: str, addr: int, length: int) -> None:
    """print_hex_dump(DUMP_PREFIX_ADDRESS, 16 bytes a row, 1-byte groups, with ASCII)."""
    data = read_bytes(dm, slab, addr, length)
    for i in range(0, len(data), 16):
        row = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in row)
        text_col = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        dm.dmesg.append(f"{text}{addr + i:016x}: {hexes:<49}{text_col}")


def print_track(dm: DebugMemory, what: str, t: Track | None) -> None:
    if t is None or not t.addr:
        return
    dm.dmesg.append(f"{what} in 0x{t.addr:x} age={0 - t.when} cpu={t.cpu} pid={t.pid}")


def print_tracking(dm: DebugMemory, s: KmemCache, obj: int) -> None:
    if not s.flags & SLAB_STORE_USER:
        return
    alloc, free = dm.tracks.get(obj, [None, None])
    print_track(dm, "Allocated", alloc)
    print_track(dm, "Freed", free)


def print_slab_info(dm: DebugMemory, slab: Slab) -> None:
    dm.dmesg.append(f"Slab 0x{slab.address:x} objects={slab.objects} used={slab.inuse} fp=0x{slab.freelist:x} "
                    f"flags=0x{slab.page.flags:x}")


def slab_bug(dm: DebugMemory, s: KmemCache | None, text: str) -> None:
    bug = f"BUG {s.name if s is not None else '<unknown>'} ({TAINTED_B if dm.tainted else NOT_TAINTED}): {text}"
    dm.dmesg.extend([BUG_RULE, *bug.split("\n"), BUG_SUBRULE, ""])  # a reason ending in \n leaves a blank line


def slab_fix(dm: DebugMemory, s: KmemCache, text: str) -> None:
    dm.dmesg.append(f"FIX {s.name}: {text}")


def print_trailer(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, p: int) -> None:
    """The tracking records, the slab, the object and its red zones and padding as hex dumps."""
    addr = slab.address
    print_tracking(dm, s, p)
    print_slab_info(dm, slab)
    dm.dmesg.extend([f"Object 0x{p:x} @offset={p - addr} fp=0x{get_freepointer(mem, s, p):x}", ""])
    if s.flags & SLAB_RED_ZONE:
        print_section(dm, slab, "Redzone  ", p - s.red_left_pad, s.red_left_pad)
    elif p > addr + 16:
        print_section(dm, slab, "Bytes b4 ", p - 16, 16)
    print_section(dm, slab, "Object   ", p, min(s.object_size, PAGE_SIZE))
    if s.flags & SLAB_RED_ZONE:
        print_section(dm, slab, "Redzone  ", p + s.object_size, s.inuse - s.object_size)
    off = get_info_end(s)
    if s.flags & SLAB_STORE_USER:
        off += 2 * SIZEOF_TRACK
    if slub_debug_orig_size(s):
        off += SIZEOF_VOID_P
    if off != size_from_object(s):
        print_section(dm, slab, "Padding  ", p + off, size_from_object(s) - off)


def object_err(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int, reason: str) -> None:
    slab_bug(dm, s, reason)
    if not obj or not check_valid_pointer(s, slab, obj):
        print_slab_info(dm, slab)
        dm.dmesg.append(f"Invalid pointer 0x{obj:x}")
    else:
        print_trailer(dm, mem, s, slab, obj)
    dm.tainted = True


def slab_err(dm: DebugMemory, s: KmemCache | None, slab: Slab, text: str) -> None:
    slab_bug(dm, s, text)
    print_slab_info(dm, slab)
    dm.tainted = True


def get_orig_size(dm: DebugMemory, s: KmemCache, obj: int) -> int:
    return dm.orig_size.get(obj, s.object_size) if slub_debug_orig_size(s) else s.object_size


def init_object(dm: DebugMemory, s: KmemCache, slab: Slab, obj: int, val: int) -> None:
    """Red zones to ``val``; the poison (0x6b..., 0xa5 last) over the object, up to a kmalloc's request."""
    poison_size = s.object_size
    if s.flags & SLAB_RED_ZONE:
        _fill(dm, slab, obj - s.red_left_pad, val, s.red_left_pad)
        if slub_debug_orig_size(s) and val == SLUB_RED_ACTIVE:
            poison_size = get_orig_size(dm, s, obj)
    if s.flags & __OBJECT_POISON:
        _fill(dm, slab, obj, POISON_FREE, poison_size - 1)
        _fill(dm, slab, obj + poison_size - 1, POISON_END, 1)
    if s.flags & SLAB_RED_ZONE:
        _fill(dm, slab, obj + poison_size, val, s.inuse - poison_size)


def restore_bytes(dm: DebugMemory, s: KmemCache, slab: Slab, message: str, data: int, start: int, end: int) -> None:
    slab_fix(dm, s, f"Restoring {message} 0x{start:x}-0x{end - 1:x}=0x{data:x}")
    _fill(dm, slab, start, data, end - start)


def check_bytes_and_report(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int, what: str,
                           start: int, value: int, nbytes: int, slab_obj_print: bool) -> bool:
    """True when ``nbytes`` from ``start`` all hold ``value``; else the report, and the bytes restored."""
    data = read_bytes(dm, slab, start, nbytes)
    first = next((i for i, b in enumerate(data) if b != value), -1)
    if first < 0:
        return True
    last = max(i for i, b in enumerate(data) if b != value)
    fault, end = start + first, start + last + 1
    dm.dmesg.append(f"[{what} overwritten] 0x{fault:x}-0x{end - 1:x} @offset={fault - slab.address}. "
                    f"First byte 0x{data[first]:x} instead of 0x{value:x}")
    if slab_obj_print:
        object_err(dm, mem, s, slab, obj, "Object corrupt")
    restore_bytes(dm, s, slab, what, value, fault, end)
    return False


def check_pad_bytes(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, p: int) -> bool:
    off = get_info_end(s)
    if s.flags & SLAB_STORE_USER:
        off += 2 * SIZEOF_TRACK
        if s.flags & SLAB_KMALLOC:
            off += SIZEOF_VOID_P
    if size_from_object(s) == off:
        return True
    return check_bytes_and_report(dm, mem, s, slab, p, "Object padding", p + off, POISON_INUSE,
                                  size_from_object(s) - off, True)


def slab_pad_check(dm: DebugMemory, s: KmemCache, slab: Slab) -> None:
    """With SLAB_POISON, the bytes after the last object (0x5a) are checked and restored."""
    if not s.flags & SLAB_POISON:
        return
    length = PAGE_SIZE << slab.order
    remainder = length % s.size
    if not remainder:
        return
    pad = slab.address + length - remainder
    data = read_bytes(dm, slab, pad, remainder)
    bad = [i for i, b in enumerate(data) if b != POISON_INUSE]
    if not bad:
        return
    fault, end = pad + bad[0], pad + bad[-1] + 1
    slab_bug(dm, s, f"Padding overwritten. 0x{fault:x}-0x{end - 1:x} @offset={fault - slab.address}")
    print_section(dm, slab, "Padding ", pad, remainder)
    print_slab_info(dm, slab)
    dm.tainted = True
    restore_bytes(dm, s, slab, "slab padding", POISON_INUSE, fault, end)


def check_object(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int, val: int) -> bool:
    """The object's red zones (``val``: 0xbb free, 0xcc in use), its poison when free, its padding and its free
    pointer; each fault is reported and repaired."""
    ret = True
    end = obj + s.object_size
    if s.flags & SLAB_RED_ZONE:
        ret &= check_bytes_and_report(dm, mem, s, slab, obj, "Left Redzone", obj - s.red_left_pad, val,
                                      s.red_left_pad, ret)
        ret &= check_bytes_and_report(dm, mem, s, slab, obj, "Right Redzone", end, val, s.inuse - s.object_size,
                                      ret)
        if slub_debug_orig_size(s) and val == SLUB_RED_ACTIVE:
            orig = get_orig_size(dm, s, obj)
            if s.object_size > orig:
                ret &= check_bytes_and_report(dm, mem, s, slab, obj, "kmalloc Redzone", obj + orig, val,
                                              s.object_size - orig, ret)
    elif s.flags & SLAB_POISON and s.object_size < s.inuse:
        ret &= check_bytes_and_report(dm, mem, s, slab, obj, "Alignment padding", end, POISON_INUSE,
                                      s.inuse - s.object_size, ret)
    if s.flags & SLAB_POISON:
        if val != SLUB_RED_ACTIVE and s.flags & __OBJECT_POISON:
            if s.object_size > 1:
                ret &= check_bytes_and_report(dm, mem, s, slab, obj, "Poison", obj, POISON_FREE,
                                              s.object_size - 1, ret)
            ret &= check_bytes_and_report(dm, mem, s, slab, obj, "End Poison", end - 1, POISON_END, 1, ret)
        ret &= check_pad_bytes(dm, mem, s, slab, obj)
    if (freeptr_outside_object(s) or val != SLUB_RED_ACTIVE) and not check_valid_pointer(
            s, slab, get_freepointer(mem, s, obj)):
        object_err(dm, mem, s, slab, obj, "Freepointer corrupt")
        set_freepointer(mem, s, obj, 0)
        ret = False
    return ret


def check_slab(dm: DebugMemory, s: KmemCache, slab: Slab) -> bool:
    maxobj = order_objects(slab.order, s.size)
    if slab.objects > maxobj:
        slab_err(dm, s, slab, f"objects {slab.objects} > max {maxobj}")
        return False
    if slab.inuse > slab.objects:
        slab_err(dm, s, slab, f"inuse {slab.inuse} > max {slab.objects}")
        return False
    if slab.frozen:
        slab_err(dm, s, slab, "Slab disabled since SLUB metadata consistency check failed")
        return False
    slab_pad_check(dm, s, slab)
    return True


def on_freelist(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, search: int) -> bool:
    """Whether ``search`` is on the slab's free list (0: check the list and the counters only)."""
    nr = 0
    fp = slab.freelist
    obj = 0
    while fp and nr <= slab.objects:
        if fp == search:
            return True
        if not check_valid_pointer(s, slab, fp):
            if obj:
                object_err(dm, mem, s, slab, obj, "Freechain corrupt")
                set_freepointer(mem, s, obj, 0)
            else:
                slab_err(dm, s, slab, "Freepointer corrupt")
                slab.freelist = 0
                slab.inuse = slab.objects
                slab_fix(dm, s, "Freelist cleared")
                return False
            break
        obj = fp
        fp = get_freepointer(mem, s, obj)
        nr += 1
    max_objects = min(order_objects(slab.order, s.size), MAX_OBJS_PER_PAGE)
    if slab.objects != max_objects:
        slab_err(dm, s, slab, f"Wrong number of objects. Found {slab.objects} but should be {max_objects}")
        slab.objects = max_objects
        slab_fix(dm, s, "Number of objects adjusted")
    if slab.inuse != slab.objects - nr:
        slab_err(dm, s, slab, f"Wrong object count. Counter is {slab.inuse} but counted were {slab.objects - nr}")
        slab.inuse = slab.objects - nr
        slab_fix(dm, s, "Object count adjusted")
    return search == 0


def set_track(dm: DebugMemory, obj: int, which: int) -> None:
    """The current call's caller and CPU as the object's alloc or free record."""
    rec = dm.tracks.setdefault(obj, [None, None])
    rec[which] = Track(dm.caller, dm.cpu)


def init_tracking(dm: DebugMemory, s: KmemCache, obj: int) -> None:
    if s.flags & SLAB_STORE_USER:
        dm.tracks[obj] = [None, None]


def consistency_checks_on(s: KmemCache) -> bool:
    return bool(s.flags & SLAB_CONSISTENCY_CHECKS)
