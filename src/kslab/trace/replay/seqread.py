"""A /proc/slabinfo read as the kernel makes it: one page of text per read(2), each page shown when the
reader asks for it (``seq_read_iter``'s buffer), so that a snapshot's later lines show the caches later."""

from __future__ import annotations

from ...mm.gfp import __GFP_ZERO, GFP_HIGHUSER_MOVABLE
from ..events import KFREE, MM_PAGE_ALLOC, TraceEvent

PAGE_SIZE = 4096  # seq_read_iter's first buffer (seq_buf_alloc(PAGE_SIZE)); slabinfo's lines never outgrow it


def slabinfo_records(text: str) -> list[str]:
    """The records of a /proc/slabinfo text as ``slab_show`` prints them: the first is the two header lines
    and the first cache's line (``print_slabinfo_header`` runs for the first cache), then one per cache."""
    lines = text.splitlines(keepends=True)
    head = 0
    while head < len(lines) and (lines[head].startswith("slabinfo - ") or lines[head].startswith("#")):
        head += 1
    if head >= len(lines):
        return ["".join(lines)] if lines else []
    return ["".join(lines[: head + 1]), *lines[head + 1:]]


def fill_page(records: list[str], start: int, size: int = PAGE_SIZE) -> int:
    """Mirrors seq_read_iter's filling of its buffer from record ``start``: whole records while they fit
    (``seq_printf`` overflows when the text reaches the buffer's end, so the buffer is never quite full),
    at least one.  Returns the index of the first record left for the next read."""
    end = start
    used = 0
    while end < len(records) and (end == start or used + len(records[end]) < size):
        used += len(records[end])
        end += 1
    return end


def is_page_cache_page(ev: TraceEvent) -> bool:
    """An ``mm_page_alloc`` of a page for a file's page cache (``GFP_HIGHUSER_MOVABLE`` without
    ``__GFP_ZERO``, order 0): what a reader copying /proc/slabinfo to a file shows of each write(2) that
    reaches a new page of that file."""
    return (ev.kind == MM_PAGE_ALLOC and ev.order == 0 and ev.gfp & GFP_HIGHUSER_MOVABLE == GFP_HIGHUSER_MOVABLE
            and not ev.gfp & __GFP_ZERO)


class SlabinfoRead:
    """One reader's /proc/slabinfo, page by page.

    ``seq_read_iter`` allocates its buffer (``buf_ptr``, the kernel's pointer) on the first read(2) and
    fills it with the first page of records; each later read(2) shows the next page, from the allocator
    as it is then.  A reader that copies the text to a file (``cat /proc/slabinfo > FILE``) writes each page
    before it reads the next, and the trace shows that write when it reaches a new page of the file: the
    reader's page-cache page allocation.  So the next page of records is shown at each such allocation
    of the reader's task, and what is left at the buffer's free (``seq_release``) or at the next marker.
    """

    def __init__(self, label: str, reader_pid: int, buf_ptr: int, text: str) -> None:
        self.label = label
        self.pid = reader_pid
        self.buf_ptr = buf_ptr
        self.shown: list[str] = []
        self.next = 0
        self.pages = 0
        self.show(text)

    def show(self, text: str, to_end: bool = False) -> None:
        """One read(2) (or all the remaining ones, ``to_end``) of the allocator whose slabinfo is ``text``."""
        records = slabinfo_records(text)
        while self.next < len(records):
            end = fill_page(records, self.next)
            self.shown.extend(records[self.next:end])
            self.next = end
            self.pages += 1
            if not to_end:
                break

    def wrote_page(self, ev: TraceEvent) -> bool:
        """``ev`` is the reader's write of a page (its next read follows)."""
        return ev.pid == self.pid and is_page_cache_page(ev)

    def closes(self, ev: TraceEvent) -> bool:
        """``ev`` frees the reader's buffer: the read is over."""
        return ev.kind == KFREE and ev.ptr == self.buf_ptr

    def text(self) -> str:
        return "".join(self.shown)
