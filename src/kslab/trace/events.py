"""Event records produced by the trace parser (:mod:`kslab.trace.ftrace`).

One :class:`TraceEvent` per trace line that the replay may care about.  The record is flat on
purpose: a single slotted class whose ``kind`` says which fields are meaningful, so that building
one costs a single constructor call.  Fields that an event kind does not carry keep cheap defaults:
``""`` for strings, ``None`` for ``name``/``accounted``, ``-1`` for ``node``, ``pfn``, ``order`` and
``migratetype``, ``0`` for the other numbers.

Which fields each kind fills:

===========================  =======================================================================
kind                         fields
===========================  =======================================================================
KMALLOC, KMEM_CACHE_ALLOC    call_site, ptr, bytes_req, bytes_alloc, gfp, and when the kernel prints
                             them: node (5.12+/6.x), accounted (6.x), name (oracle kernels)
KMALLOC_NODE,                as above, node always
KMEM_CACHE_ALLOC_NODE
KFREE                        call_site, ptr (0 for ``kfree(NULL)``)
KMEM_CACHE_FREE              call_site, ptr, name (oracle kernels and 5.12+)
MM_PAGE_ALLOC                ptr (the ``page=`` address), pfn, order, migratetype, gfp
MM_PAGE_FREE,                ptr (``page=``), pfn, order
MM_PAGE_FREE_BATCHED
MARK                         text: what was written to ``trace_marker``
FUNC                         text: the traced function (without ``+off/size``); parent: its caller
                             as printed ("" when the tracer did not print it)
===========================  =======================================================================

Every event has ``lineno`` (1-based, in the decompressed text), ``cpu``, ``ts``, ``comm``, ``pid``
and ``irq``: the context the line was written in, from the irq-info flags column when the trace has
one (its third character): 0 task (or no such column), 1 softirq (``s``), 2 hardirq (``h``, ``H``),
3 NMI (``z``, ``Z``).  ``ts`` is a float: seconds for the nanosecond clocks (local, global, mono, ...), the raw
integer count for the ``counter``/``x86-tsc``/``uptime`` clocks (see ``ParseStats.clocks_seen``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The numbering groups the kinds: allocations 0-3, frees 4-5, page allocator 6-8.
KMALLOC: Final = 0
KMALLOC_NODE: Final = 1
KMEM_CACHE_ALLOC: Final = 2
KMEM_CACHE_ALLOC_NODE: Final = 3
KFREE: Final = 4
KMEM_CACHE_FREE: Final = 5
MM_PAGE_ALLOC: Final = 6
MM_PAGE_FREE: Final = 7
MM_PAGE_FREE_BATCHED: Final = 8
MARK: Final = 9
FUNC: Final = 10

#: Name of each kind, indexed by the kind constant (the tracepoint's name where there is one).
KIND_NAMES: Final[tuple[str, ...]] = (
    "kmalloc",
    "kmalloc_node",
    "kmem_cache_alloc",
    "kmem_cache_alloc_node",
    "kfree",
    "kmem_cache_free",
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_batched",
    "mark",
    "func",
)

#: Kinds that hand out an object (the ``ptr`` field is the object).
ALLOC_KINDS: Final = frozenset({KMALLOC, KMALLOC_NODE, KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE})
#: Kinds that give an object back.
FREE_KINDS: Final = frozenset({KFREE, KMEM_CACHE_FREE})
#: Kinds of the page allocator.
PAGE_KINDS: Final = frozenset({MM_PAGE_ALLOC, MM_PAGE_FREE, MM_PAGE_FREE_BATCHED})


def kind_name(kind: int) -> str:
    """The name of an event kind (``"kmalloc"``, ``"func"``, ...)."""
    return KIND_NAMES[kind]


@dataclass(slots=True)
class TraceEvent:
    """One parsed trace line.  See the module docstring for which fields each kind fills."""

    kind: int
    lineno: int
    cpu: int
    ts: float
    comm: str
    pid: int
    call_site: str = ""
    ptr: int = 0
    bytes_req: int = 0
    bytes_alloc: int = 0
    gfp: int = 0
    node: int = -1
    name: str | None = None
    accounted: bool | None = None
    pfn: int = -1
    order: int = -1
    migratetype: int = -1
    text: str = ""
    parent: str = ""
    irq: int = 0

    @property
    def kind_name(self) -> str:
        """The name of this event's kind."""
        return KIND_NAMES[self.kind]
