"""Intrusive doubly-linked lists (include/linux/list.h).

A :class:`ListHead` is a sentinel; entries carry ``prev``/``next`` attributes themselves (slab pages
link through ``page.lru_prev``/``page.lru_next`` as ``page->slab_list`` does).  Which end a page is
put on decides every later choice of the allocator, so head/tail semantics follow list.h exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .page import Page  # the only entries: slab pages on a kmem_cache_node's lists


class ListHead:
    """A circular list sentinel with O(1) add at either end and O(1) removal of any entry."""

    __slots__ = ("lru_next", "lru_prev", "length")

    def __init__(self) -> None:
        # Any: a link is this sentinel or a Page; callers tell them apart with ``is``.
        self.lru_next: Any = self
        self.lru_prev: Any = self
        self.length = 0

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.lru_next is not self

    def __iter__(self) -> Iterator[Page]:
        e = self.lru_next
        while e is not self:
            nxt = e.lru_next
            yield e
            e = nxt

    def first(self) -> Page | None:
        """list_first_entry_or_null()."""
        e = self.lru_next
        return None if e is self else e

    def last(self) -> Page | None:
        """list_last_entry() or None."""
        e = self.lru_prev
        return None if e is self else e

    def add(self, e: Page) -> None:
        """list_add(): insert ``e`` at the head."""
        nxt = self.lru_next
        e.lru_next = nxt
        e.lru_prev = self
        nxt.lru_prev = e
        self.lru_next = e
        e.on_list = self
        self.length += 1

    def add_tail(self, e: Page) -> None:
        """list_add_tail(): insert ``e`` at the tail."""
        prv = self.lru_prev
        e.lru_prev = prv
        e.lru_next = self
        prv.lru_next = e
        self.lru_prev = e
        e.on_list = self
        self.length += 1


def list_del(e: Page) -> None:
    """list_del(): unlink ``e`` from whatever list holds it."""
    head = e.on_list
    if head is None:
        return
    e.lru_prev.lru_next = e.lru_next
    e.lru_next.lru_prev = e.lru_prev
    e.lru_next = e.lru_prev = None
    e.on_list = None
    head.length -= 1
