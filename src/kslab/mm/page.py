"""struct page as far as SLAB and the buddy allocator use it (include/linux/mm_types.h, page-flags.h).

Pages exist in the model only once touched: :class:`MemMap` holds a ``Page`` for every page of a
block the page allocator has handed out (head and tail pages), and nothing for free or untouched
memory, so a 64 GiB machine costs nothing until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .config import PAGE_SHIFT, PAGE_SIZE

if TYPE_CHECKING:
    from .slab_def import KmemCache

PAGE_OFFSET: Final = 0xFFFF888000000000  # x86_64 direct map, no KASLR
VMEMMAP_START: Final = 0xFFFFEA0000000000
SIZEOF_STRUCT_PAGE: Final = 64
TAIL_MAPPING: Final = 0x400

# page flag bits (include/linux/page-flags.h, x86_64)
PG_locked: Final = 0
PG_referenced: Final = 1
PG_uptodate: Final = 2
PG_dirty: Final = 3
PG_lru: Final = 4
PG_active: Final = 5  # doubles as PG_pfmemalloc on slab pages (SlabPfmemalloc)
PG_slab: Final = 9
PG_head: Final = 16


class Page:
    """One ``struct page``.  Slab fields overlay the kernel's unions; names are the kernel's.

    ``compound_head`` is the union word: on a TAIL page it is the head's vmemmap address + 1 (bit 0
    set), on head and order-0 pages it is 0.  ``fl`` is the byte array of freelist indices that
    lives at ``freelist`` (inside the slab, inside an object, or in an off-slab object).
    """

    __slots__ = (
        "pfn", "flags", "compound_head", "compound_order", "nid", "zone", "mapping", "_refcount",
        "slab_cache", "freelist", "s_mem", "active", "fl", "fl_obj",
        "lru_next", "lru_prev", "on_list", "private", "rcu_pending",
    )

    def __init__(self, pfn: int, nid: int = 0, zone: int = 0) -> None:
        self.pfn = pfn
        self.flags = 0
        self.compound_head = 0
        self.compound_order = 0
        self.nid = nid
        self.zone = zone
        self.mapping: Any = None
        self._refcount = 1
        self.slab_cache: KmemCache | None = None
        self.freelist: int | None = None
        self.s_mem = 0
        self.active = -1  # _mapcount reset value
        self.fl: bytearray | None = None
        self.fl_obj = 0  # off-slab: the freelist object's address in freelist_cache
        self.lru_next: Any = None
        self.lru_prev: Any = None
        self.on_list: Any = None
        self.private = 0
        self.rcu_pending = False

    def __repr__(self) -> str:
        kind = "slab" if self.flags & (1 << PG_slab) else ("tail" if self.compound_head & 1 else "page")
        extra = ""
        if self.slab_cache is not None:
            extra = f" cache={self.slab_cache.name} active={self.active}/{self.slab_cache.num}"
        return f"<Page pfn={self.pfn} {kind} order={self.compound_order} nid={self.nid}{extra}>"

    # PageSlab() & co. on the page itself (callers resolve tails first, as the kernel's PF_NO_TAIL does)
    @property
    def address(self) -> int:
        """page_address(): the direct-map virtual address."""
        return PAGE_OFFSET + (self.pfn << PAGE_SHIFT)

    @property
    def vmemmap(self) -> int:
        """The address of this struct page in the vmemmap."""
        return VMEMMAP_START + self.pfn * SIZEOF_STRUCT_PAGE


def PageSlab(page: Page) -> bool:  # kernel name
    return bool(page.flags & (1 << PG_slab))


def PageHead(page: Page) -> bool:
    return bool(page.flags & (1 << PG_head))


def PageTail(page: Page) -> bool:
    return bool(page.compound_head & 1)


def PageSlabPfmemalloc(page: Page) -> bool:
    return bool(page.flags & (1 << PG_active))


def virt_to_pfn(addr: int) -> int:
    return (addr - PAGE_OFFSET) >> PAGE_SHIFT


def pfn_to_virt(pfn: int) -> int:
    return PAGE_OFFSET + (pfn << PAGE_SHIFT)


def is_direct_map(addr: int, max_pfn: int) -> bool:
    """virt_addr_valid() for the direct map of a machine with ``max_pfn`` page frames."""
    return PAGE_OFFSET <= addr < PAGE_OFFSET + (max_pfn << PAGE_SHIFT)


class MemMap:
    """The touched part of ``mem_map``: pfn -> Page for every page of every allocated block."""

    __slots__ = ("pages",)

    def __init__(self) -> None:
        self.pages: dict[int, Page] = {}

    def __len__(self) -> int:
        return len(self.pages)

    def pfn_to_page(self, pfn: int) -> Page | None:
        return self.pages.get(pfn)

    def virt_to_page(self, addr: int) -> Page | None:
        """virt_to_page(): the page of a direct-map address, or None if it was never handed out."""
        return self.pages.get((addr - PAGE_OFFSET) >> PAGE_SHIFT)

    def compound_head(self, page: Page) -> Page:
        """compound_head(): bit 0 of the union word marks a tail page whose word holds head + 1."""
        word = page.compound_head
        if word & 1:
            head = self.pages.get((word - 1 - VMEMMAP_START) // SIZEOF_STRUCT_PAGE)
            if head is None:  # pragma: no cover - a tail without head is a model bug
                raise AssertionError(f"tail page {page.pfn} has no head")
            return head
        return page

    def virt_to_head_page(self, addr: int) -> Page | None:
        """virt_to_head_page() = compound_head(virt_to_page(addr))."""
        page = self.pages.get((addr - PAGE_OFFSET) >> PAGE_SHIFT)
        if page is None:
            return None
        return self.compound_head(page) if page.compound_head & 1 else page

    def prep_new_block(self, pfn: int, order: int, nid: int, zone: int, comp: bool) -> Page:
        """Create the pages of a freshly allocated block (prep_new_page / prep_compound_page)."""
        head = Page(pfn, nid, zone)
        self.pages[pfn] = head
        if order:
            head.compound_order = order
            if comp:
                head.flags |= 1 << PG_head
                tail_word = head.vmemmap + 1
                for p in range(pfn + 1, pfn + (1 << order)):
                    t = Page(p, nid, zone)
                    t.compound_head = tail_word
                    t.mapping = TAIL_MAPPING
                    t._refcount = 0
                    self.pages[p] = t
            else:
                for p in range(pfn + 1, pfn + (1 << order)):
                    self.pages[p] = Page(p, nid, zone)
        return head

    def release_block(self, pfn: int, order: int) -> None:
        """Forget the pages of a block given back to the buddy allocator."""
        for p in range(pfn, pfn + (1 << order)):
            self.pages.pop(p, None)


__all__ = [
    "PAGE_OFFSET", "PAGE_SHIFT", "PAGE_SIZE", "MemMap", "Page", "PageHead", "PageSlab", "PageSlabPfmemalloc",
    "PageTail", "pfn_to_virt", "virt_to_pfn",
]
