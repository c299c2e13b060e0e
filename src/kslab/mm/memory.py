"""Physical memory contents, kept only for pages that were written with something else than zeros.

Reads of never-written memory return zeros and cost nothing; writing zeros there (a kzalloc's
memset, init_on_alloc) creates nothing either.  A slab's freelist index array
(``page.fl``) is part of the slab's bytes: reading or writing the bytes at ``page.freelist``
reads or writes the indices, so a stray write into an objfreelist object really corrupts the
freelist, as it would in the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import PAGE_SHIFT, PAGE_SIZE
from .page import PAGE_OFFSET

if TYPE_CHECKING:
    from .page import MemMap, Page


class Memory:
    """Sparse bytes of the direct map: pfn -> bytearray(PAGE_SIZE), created on first write."""

    __slots__ = ("frames", "mem_map")

    def __init__(self, mem_map: MemMap) -> None:
        self.frames: dict[int, bytearray] = {}
        self.mem_map = mem_map

    def _freelist_ranges(self, addr: int, n: int) -> list[tuple[Page, int]]:
        """Slab pages whose freelist bytes overlap [addr, addr+n)."""
        out = []
        seen = set()
        for pfn in range((addr - PAGE_OFFSET) >> PAGE_SHIFT, ((addr + n - 1 - PAGE_OFFSET) >> PAGE_SHIFT) + 1):
            page = self.mem_map.pages.get(pfn)
            if page is None:
                continue
            head = self.mem_map.compound_head(page)
            if id(head) in seen or head.fl is None or head.freelist is None or head.fl_obj:
                continue
            seen.add(id(head))
            start = head.freelist
            if start < addr + n and addr < start + len(head.fl):
                out.append((head, start))
        return out

    def read(self, addr: int, n: int) -> bytes:
        buf = bytearray(n)
        pos = 0
        while pos < n:
            a = addr + pos
            pfn = (a - PAGE_OFFSET) >> PAGE_SHIFT
            off = (a - PAGE_OFFSET) & (PAGE_SIZE - 1)
            chunk = min(n - pos, PAGE_SIZE - off)
            frame = self.frames.get(pfn)
            if frame is not None:
                buf[pos:pos + chunk] = frame[off:off + chunk]
            pos += chunk
        for head, start in self._freelist_ranges(addr, n):
            fl = head.fl
            assert fl is not None
            for i in range(len(fl)):
                j = start + i - addr
                if 0 <= j < n:
                    buf[j] = fl[i]
        return bytes(buf)

    def write(self, addr: int, data: bytes | bytearray) -> None:
        n = len(data)
        pos = 0
        frames = self.frames
        while pos < n:
            a = addr + pos
            pfn = (a - PAGE_OFFSET) >> PAGE_SHIFT
            off = (a - PAGE_OFFSET) & (PAGE_SIZE - 1)
            chunk = min(n - pos, PAGE_SIZE - off)
            frame = frames.get(pfn)
            if frame is None:
                piece = data[pos:pos + chunk]
                if piece.count(0) == chunk:  # zeros onto never-written memory: it reads as zeros already
                    pos += chunk
                    continue
                frame = frames[pfn] = bytearray(PAGE_SIZE)
                frame[off:off + chunk] = piece
            else:
                frame[off:off + chunk] = data[pos:pos + chunk]
            pos += chunk
        for head, start in self._freelist_ranges(addr, n):
            fl = head.fl
            assert fl is not None
            for i in range(len(fl)):
                j = start + i - addr
                if 0 <= j < n:
                    fl[i] = data[j]

    def memset(self, addr: int, value: int, n: int) -> None:
        if n <= 0:
            return
        if value & 0xFF == 0 and not self.frames:
            # nothing was ever written: the bytes read as zeros already, only freelist bytes can change
            # (write()'s freelist part, for zeros)
            pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
            if pfn == (addr + n - 1 - PAGE_OFFSET) >> PAGE_SHIFT:
                # within one page (a slab object, mostly): _freelist_ranges()'s test for that page, inlined
                page = self.mem_map.pages.get(pfn)
                if page is None:
                    return
                head = self.mem_map.compound_head(page) if page.compound_head & 1 else page
                fl = head.fl
                start = head.freelist
                if fl is None or start is None or head.fl_obj or not (start < addr + n and addr < start + len(fl)):
                    return
            for head, start in self._freelist_ranges(addr, n):
                fl = head.fl
                assert fl is not None
                for i in range(len(fl)):
                    if 0 <= start + i - addr < n:
                        fl[i] = 0
            return
        self.write(addr, bytes([value & 0xFF]) * n)

    def memcpy(self, dst: int, src: int, n: int) -> None:
        if n > 0:
            self.write(dst, self.read(src, n))

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    def forget(self, pfn: int, order: int) -> None:
        """Pages went back to the buddy allocator: their contents no longer matter."""
        frames = self.frames
        if frames:
            for p in range(pfn, pfn + (1 << order)):
                frames.pop(p, None)

    def __len__(self) -> int:
        return len(self.frames)
