# ruff: noqa: RUF001  (the Chinese templates use full-width punctuation on purpose)
"""Render the allocator's recorded decisions as text, in English or Chinese.

The core (``kslab.mm``) records a :class:`~kslab.mm.explain.Step` per decision: the kernel function,
a key naming the branch taken, and the values that decided it.  :func:`narrate` turns a list of steps
into one line per step, ``function: decision with the values``, indented by call depth.

Depth comes from :data:`CALLS`, a static table of which kernel function calls which (mm/slab.c,
v5.10).  A step nests under the nearest function on the current call stack that calls it; when the
path runs through functions that recorded nothing (``__do_cache_alloc``, ``virt_to_head_page``), a
short ``calls`` line is shown for each so the indentation always matches the kernel's call chain.

Kernel identifiers are never translated.  Unknown (function, key) pairs still render, as
``function: key a=1, b=0x...``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ..mm.explain import Step
from ..mm.gfp import show_gfp_flags

if TYPE_CHECKING:
    from ..scenarios import Explanation

LANGS = ("en", "zh")

# ---- the call graph ------------------------------------------------------------------------------
# caller -> callees, as far as narration needs it (functions that record steps, and the functions on
# the way to them).  Order matters only for ties between equally short paths.
CALLS: dict[str, tuple[str, ...]] = {
    # free side (the seed's structure)
    "kfree": ("virt_to_cache", "__cache_free"),
    "kmem_cache_free": ("cache_from_obj", "__cache_free"),
    "kfree_bulk": ("kmem_cache_free_bulk",),
    "kmem_cache_free_bulk": ("virt_to_cache", "cache_from_obj", "__cache_free"),
    "cache_from_obj": ("virt_to_cache",),
    "virt_to_cache": ("virt_to_head_page",),
    "virt_to_head_page": ("compound_head",),
    "__cache_free": ("___cache_free",),
    "___cache_free": ("cache_free_alien", "cache_flusharray", "cache_free_pfmemalloc", "__free_one"),
    "cache_free_alien": ("__cache_free_alien",),
    "__cache_free_alien": ("__drain_alien_cache", "__free_one", "free_block", "slabs_destroy"),
    "__drain_alien_cache": ("transfer_objects", "free_block"),
    "cache_flusharray": ("free_block", "slabs_destroy"),
    "cache_free_pfmemalloc": ("free_block", "slabs_destroy"),
    "free_block": ("slab_put_obj",),
    "slab_put_obj": ("obj_to_index", "set_free_obj"),
    "slabs_destroy": ("slab_destroy",),
    "slab_destroy": ("kmem_freepages", "kmem_rcu_free", "kmem_cache_free"),
    "kmem_rcu_free": ("kmem_freepages",),
    # allocation side
    "__do_kmalloc": ("kmalloc_slab", "slab_alloc"),
    "__do_kmalloc_node": ("kmalloc_slab", "slab_alloc_node"),
    "kmem_cache_alloc": ("slab_alloc",),
    "kmem_cache_alloc_node": ("slab_alloc_node",),
    "slab_alloc": ("__do_cache_alloc",),
    "slab_alloc_node": ("____cache_alloc", "____cache_alloc_node", "fallback_alloc"),
    "__do_cache_alloc": ("alternate_node_alloc", "____cache_alloc", "____cache_alloc_node"),
    "alternate_node_alloc": ("____cache_alloc_node",),
    "____cache_alloc": ("cache_alloc_refill",),
    "cache_alloc_refill": ("transfer_objects", "alloc_block", "fixup_slab_list", "cache_alloc_pfmemalloc",
                           "cache_grow_begin", "cache_grow_end"),
    "cache_alloc_pfmemalloc": ("fixup_slab_list",),
    "____cache_alloc_node": ("fixup_slab_list", "cache_grow_begin", "cache_grow_end", "fallback_alloc"),
    "fallback_alloc": ("____cache_alloc_node", "cache_grow_begin", "cache_grow_end"),
    "cache_grow_begin": ("kmem_getpages", "alloc_slabmgmt", "cache_init_objs", "kmem_freepages"),
    "alloc_slabmgmt": ("kmem_cache_alloc_node",),
    "cache_grow_end": ("fixup_slab_list",),
    # reaping and tuning
    "cache_reap": ("reap_alien", "drain_array", "drain_freelist"),
    "reap_alien": ("__drain_alien_cache", "slabs_destroy"),
    "drain_array": ("drain_array_locked", "slabs_destroy"),
    "drain_array_locked": ("free_block",),
    "drain_freelist": ("slab_destroy",),
    "do_tune_cpucache": ("free_block", "slabs_destroy"),
}

# Edges that re-enter the allocator (an off-slab freelist is itself a slab object).  They are used
# only for a direct call, never as a pass-through, so a later step cannot be mistaken for part of
# the recursive call.
REENTRANT = frozenset({("slab_destroy", "kmem_cache_free"), ("alloc_slabmgmt", "kmem_cache_alloc_node")})
MAX_HOPS = 5


@cache
def call_path(caller: str, callee: str) -> tuple[str, ...] | None:
    """The shortest call chain from ``caller`` to ``callee`` (excluding ``caller``), or None.

    ``call_path("slab_alloc", "____cache_alloc") == ("__do_cache_alloc", "____cache_alloc")``.
    """
    if caller == callee:
        return ()
    if (caller, callee) in REENTRANT:
        return (callee,)
    seen = {caller}
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(caller, ())])
    while queue:
        f, path = queue.popleft()
        if len(path) >= MAX_HOPS:
            continue
        for g in CALLS.get(f, ()):
            if (f, g) in REENTRANT or g in seen:
                continue
            p = (*path, g)
            if g == callee:
                return p
            seen.add(g)
            queue.append((g, p))
    return None


@dataclass(frozen=True, slots=True)
class Line:
    """One line of narration: a recorded step, or a ``calls`` line for a function that recorded nothing."""

    depth: int
    func: str
    key: str
    values: dict[str, Any]
    synthetic: bool = False


def layout(steps: Iterable[Step]) -> list[Line]:
    """Give each step its call depth, inserting ``calls`` lines for silent intermediate functions.

    A step attaches to the topmost function on the stack that is the same function or calls it
    directly; failing that, to the one with the shortest call chain to it (then the intermediate
    functions are pushed as ``calls`` lines).  A step no function on the stack reaches starts a new
    root at depth 0.
    """
    out: list[Line] = []
    stack: list[tuple[str, int]] = []
    for s in steps:
        best: tuple[int, int, tuple[str, ...]] | None = None  # (stack index, hops, path)
        for i in range(len(stack) - 1, -1, -1):
            p = call_path(stack[i][0], s.func)
            if p is None:
                continue
            if len(p) <= 1:
                best = (i, len(p), p)
                break
            if best is None or len(p) < best[1]:
                best = (i, len(p), p)
        if best is None:
            stack = []
            depth = 0
        else:
            i, _, path = best
            del stack[i + 1:]
            if not path:  # the same function again: a further decision of the same call
                depth = stack[i][1]
            else:
                depth = stack[i][1]
                for j, f in enumerate(path[:-1]):
                    depth += 1
                    out.append(Line(depth, f, "_calls", {"callee": path[j + 1]}, True))
                    stack.append((f, depth))
                depth += 1
        if not stack or stack[-1][0] != s.func or stack[-1][1] != depth:
            stack.append((s.func, depth))
        out.append(Line(depth, s.func, s.key, dict(s.values)))
    return out


def step_depths(steps: Sequence[Step]) -> list[int]:
    """The depth of each step (the ``calls`` lines left out)."""
    return [ln.depth for ln in layout(steps) if not ln.synthetic]


# ---- value formatting --------------------------------------------------------------------------

KMALLOC_KINDS = {0: "KMALLOC_NORMAL", 1: "KMALLOC_RECLAIM", 2: "KMALLOC_DMA"}


def _hex(v: Any) -> str:
    return f"{v:#x}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def _value(name: str, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(_value(name, x) for x in v) + "]"
        return str(v)
    if name in ("obj", "ptr", "addr", "freelist", "s_mem", "word", "pfn", "head_pfn") or v >= 1 << 40:
        return f"{v:#x}"
    if name == "flags":
        return f"{v:#x}"
    return str(v)


def generic(func: str, key: str, values: dict[str, Any]) -> str:
    """The fallback rendering for a step without a template."""
    vals = ", ".join(f"{k}={_value(k, v)}" for k, v in values.items())
    return f"{func}: {key}" + (f" {vals}" if vals else "")


class _V(dict[str, Any]):
    """Values with derived fields, for str.format_map."""

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _derive(v: dict[str, Any]) -> _V:
    d = _V(v)
    if "flags" in v and isinstance(v["flags"], int):
        d["gfp"] = show_gfp_flags(v["flags"]) if v["flags"] else "0"
    if "kind" in v:
        d["kind_name"] = KMALLOC_KINDS.get(v["kind"], str(v["kind"]))
    if "order" in v and isinstance(v["order"], int):
        d["pages"] = 1 << v["order"]
        d["pages_en"] = "1 page" if v["order"] == 0 else f"{1 << v['order']} pages"
    if "nr" in v and isinstance(v["nr"], int):
        d["last"] = v["nr"] - 1
    if "pfns" in v:
        d["pfn_list"] = ", ".join(_hex(p) for p in v["pfns"])
    if "num" in v and "active" in v:
        d["free"] = v["num"] - v["active"]
    if "was" in v:
        d["was_list"] = f"slabs_{v['was']}" if v["was"] != "none" else "-"
    return d


Template = str | Callable[[_V], str]

# ---- English -----------------------------------------------------------------------------------


def _en_kfree_entry(v: _V) -> str:
    if v["obj"] <= 16:
        return "kfree({obj:#x}) on CPU {cpu} (node {node}): trace_kfree fires first, even for NULL".format_map(v)
    return ("kfree({obj:#x}) on CPU {cpu} (node {node}): trace_kfree fires first; {obj:#x} > ZERO_SIZE_PTR (16), "
            "not NULL -> local_irq_save, virt_to_cache").format_map(v)


def _en_compound_head(v: _V) -> str:
    s = ("virt_to_page({obj:#x}) = pfn {pfn:#x}; bit 0 of page->compound_head is clear: not a tail page, "
         "so the page is its own head").format_map(v)
    if v["order"]:
        return s + f" (the head page of an order-{v['order']} compound page)"
    return s + " (an order-0 page)"


def _en_push(v: _V) -> str:
    v["prev"] = v["avail"] - 1
    if v.get("node", -1) >= 0:
        return ("alien array for node {node}: entry[{prev}] = {obj:#x}, avail {prev} -> {avail} (limit {limit})"
                .format_map(v))
    return ("ac->entry[{prev}] = {obj:#x}, avail {prev} -> {avail} (limit {limit}): the newest entry, the first one "
            "the next allocation on this CPU gets (LIFO, still cache-hot)").format_map(v)


def _en_drain(v: _V) -> str:
    s = "node {node}'s list_lock held: ".format_map(v)
    if v["to_shared"]:
        s += "transfer_objects moved the newest {to_shared} into node {node}'s shared array; ".format_map(v)
    else:
        s += "transfer_objects moved nothing (no shared array on node {node}, or it is full); ".format_map(v)
    if not v["to_slabs"]:
        return s + "nothing is left for free_block (called with 0 objects); ac->avail = 0"
    return s + "free_block returns the remaining {to_slabs} to their slabs; ac->avail = 0".format_map(v)


def _en_flush_shared(v: _V) -> str:
    v["before"] = v["shared"] - v["nr"]
    return ("shared array has room {room} ({before} of {limit} used): move min(batchcount, room) = {nr} oldest "
            "objects ac->entry[0..{last}] onto it (shared avail {before} -> {shared}); nothing goes back to the "
            "slabs").format_map(v)


def _en_free_block_check(v: _V) -> str:
    if v["free_objects"] > v["free_limit"]:
        return ("free_objects {free_objects} > free_limit {free_limit}: too many free objects on node {node} -> "
                "give back empty slabs, coldest first (tail of slabs_free), while there are any").format_map(v)
    return "free_objects {free_objects} <= free_limit {free_limit}: no slab is given back".format_map(v)


def _en_trim(v: _V) -> str:
    v["after"] = v["free_objects"] - v.get("num", 0)
    if "num" not in v:
        return ("free_objects {free_objects} > free_limit {free_limit}: the coldest empty slab (tail of slabs_free) "
                "pfn {pfn:#x} moves to the destroy list").format_map(v)
    return ("free_objects {free_objects} > free_limit {free_limit}: the coldest empty slab (tail of slabs_free) "
            "pfn {pfn:#x} moves to the head of the destroy list; free_objects -= num {num} -> {after}, "
            "free_slabs--, total_slabs--").format_map(v)


def _en_slab_destroy(v: _V) -> str:
    if v.get("rcu"):
        return ("slab pfn {pfn:#x}: SLAB_TYPESAFE_BY_RCU -> call_rcu(kmem_rcu_free): the pages go back after an RCU "
                "grace period").format_map(v)
    return "slab pfn {pfn:#x}: not SLAB_TYPESAFE_BY_RCU -> kmem_freepages now".format_map(v)


def _en_refill(v: _V) -> str:
    s = "batchcount {batch}".format_map(v)
    if not v["touched"]:
        s += " (ac->touched 0, not used since the last reap: take at most BATCHREFILL_LIMIT = 16)"
    s += "; node free_objects {free_objects}".format_map(v)
    s += ", shared avail {shared}".format_map(v) if v["shared"] >= 0 else ", no shared array"
    if not v["free_objects"] and v["shared"] <= 0:
        s += ": nothing to take on this node"
    return s


def _en_alloc_block(v: _V) -> str:
    v["take"] = min(v["batch"], v["num"] - v["active"])
    v["src_text"] = {"partial": "head of slabs_partial", "free": "head of slabs_free",
                     "new": "the new slab"}.get(v["src"], v["src"])
    return ("slab pfn {pfn:#x} ({src_text}), active {active} of {num}: take min(batch {batch}, free {free}) = {take} "
            "objects in freelist order").format_map(v)


def _en_fixup_full(v: _V) -> str:
    s = "slab pfn {pfn:#x} active {active} of {num}: head of slabs_full".format_map(v)
    if v.get("objfreelist"):
        s += "; OBJFREELIST: page->freelist = NULL (its index array sat in an object that is now handed out)"
    return s


def _en_grow_end(v: _V) -> str:
    s = "node list_lock: total_slabs -> {total_slabs}; ".format_map(v)
    if not v["active"]:
        s += "active 0: slab pfn {pfn:#x} goes to the tail of slabs_free (free_slabs++)".format_map(v)
    else:
        s += "active {active} of {num}: fixup_slab_list places slab pfn {pfn:#x}".format_map(v)
    return s + "; free_objects += {free} -> {free_objects}".format_map(v)


EN: dict[tuple[str, str], Template] = {
    ("kfree", "entry"): _en_kfree_entry,
    ("kfree", "null"): "objp {obj:#x} <= ZERO_SIZE_PTR (16): NULL or ZERO_SIZE_PTR, return at once (the kfree event "
                       "was still traced)",
    ("kfree", "enter"): "the object belongs to {cache}; debug_check_no_locks_freed (LOCKDEP) and "
                        "debug_check_no_obj_freed (DEBUG_OBJECTS_FREE) do nothing here -> __cache_free, then "
                        "local_irq_restore",
    ("virt_to_head_page", "free_page"): "virt_to_page({obj:#x}) = pfn {pfn:#x}: a page nobody has allocated (free "
                                        "memory); its flags have no PG_slab",
    ("compound_head", "tail"): "virt_to_page({obj:#x}) = pfn {pfn:#x}; page->compound_head = {word:#x} has bit 0 set: "
                               "a TAIL page, the word holds the head's struct page address + 1 -> head page pfn "
                               "{head_pfn:#x} (compound order {order})",
    ("compound_head", "head"): _en_compound_head,
    ("virt_to_cache", "slab_page"): "PageSlab(pfn {pfn:#x}) is true -> page->slab_cache = {cache}",
    ("virt_to_cache", "not_slab"): "PageSlab is false: {obj:#x} is not in a slab page (a page-allocator page, a static "
                                   "object, or a stale pointer into a slab already destroyed) -> WARN_ONCE "
                                   "\"virt_to_cache: Object is not a Slab page!\", return NULL: the free is ignored",
    ("kmem_cache_free", "entry"): "kmem_cache_free({cache}, {obj:#x}) on CPU {cpu} (node {node})",
    ("kmem_cache_free", "enter"): "cache_from_obj -> {cache}; IRQs off -> __cache_free (the kmem_cache_free event is "
                                  "traced after the free)",
    ("__cache_free", "hooks"): "kasan_slab_free: no KASAN, no quarantine; the KCSAN (data-race detector) assertion is "
                               "compiled out -> ___cache_free",
    ("___cache_free", "init_on_free"): "init_on_free: memset({obj:#x}, 0, object_size {object_size}): the caller's "
                                       "size, not the padded stride size {size}",
    ("___cache_free", "init_on_free_skip"): "init_on_free is on, but slab_want_init_on_free is false for this cache "
                                            "(a constructor, SLAB_TYPESAFE_BY_RCU or SLAB_POISON): no zeroing",
    ("___cache_free", "debugcheck"): "CONFIG_DEBUG_SLAB: cache_free_debugcheck checked the red zones, stored the "
                                     "caller and poisoned the object as the cache's flags ask; objp = {obj:#x}",
    ("___cache_free", "one_node"): "nr_online_nodes = {nodes}: no alien check, the object is local",
    ("___cache_free", "freehit"): "ac->avail {avail} < ac->limit {limit}: room in this CPU's array, STATS freehit++",
    ("___cache_free", "freemiss"): "ac->avail {avail} == ac->limit {limit}: this CPU's array is full, STATS "
                                   "freemiss++ -> cache_flusharray before the object is pushed",
    ("___cache_free", "pfmemalloc"): "sk_memalloc_socks and the slab came from the memory reserves "
                                     "(PageSlabPfmemalloc): cache_free_pfmemalloc returns the object straight to its "
                                     "slab on node {node}, not to the array",
    ("cache_free_alien", "local"): "page_to_nid = {page_node} == numa_mem_id() = {node}: a local object -> return 0, "
                                   "go on with this CPU's array",
    ("cache_free_alien", "alien"): "page_to_nid = {page_node} != numa_mem_id() = {node}: the object's slab is on node "
                                   "{page_node} -> __cache_free_alien (then ___cache_free returns)",
    ("__cache_free_alien", "alien_stage"): "STATS node_frees++; node {node}'s alien[{page_node}] holds {avail} of "
                                           "{limit}: there is room, stage the object there",
    ("__cache_free_alien", "alien_overflow"): "STATS node_frees++; node {node}'s alien[{page_node}] is full (avail "
                                              "{avail} == limit {limit}): STATS node_overflow++ -> __drain_alien_cache "
                                              "first",
    ("__cache_free_alien", "alien_direct"): "STATS node_frees++; no alien array for node {page_node} (noaliencache, "
                                            "or not set up): free_block straight into node {page_node}'s slabs under "
                                            "its list_lock",
    ("__drain_alien_cache", "alien_drain"): _en_drain,
    ("__free_one", "push"): _en_push,
    ("__free_one", "hardened_drop"): "CONFIG_SLAB_FREELIST_HARDENED: ac->entry[avail-1] is already {obj:#x}, an "
                                     "immediate double free -> WARN_ON_ONCE, and this free is dropped",
    ("cache_flusharray", "flush_shared"): _en_flush_shared,
    ("cache_flusharray", "shared_full"): "the node's shared array is full ({limit} of {limit}): no room",
    ("cache_flusharray", "no_shared"): "this node has no shared array (1 CPU, objects larger than a page, or "
                                       "shared 0)",
    ("cache_flusharray", "flush_free_block"): "free_block the {nr} oldest objects ac->entry[0..{last}] back to their "
                                              "slabs (objects, not pages: pages go back only for trimmed empty slabs)",
    ("cache_flusharray", "slide"): "ac->avail -= {nr} -> {avail}; memmove the remaining {avail} entries down to "
                                   "entry[0] (the hot end stays on top)",
    ("free_block", "entry"): "node {node}, list_lock held: n->free_objects += {nr} -> {free_objects}; each object "
                             "goes back to its slab",
    ("free_block", "to_free"): "slab pfn {pfn:#x} (was on {was_list}): active 0 -> head of slabs_free, free_slabs++",
    ("free_block", "to_partial"): "slab pfn {pfn:#x} (was on {was_list}): active {active} of {num} -> tail of "
                                  "slabs_partial",
    ("free_block", "free_block"): _en_free_block_check,
    ("free_block", "trim"): _en_trim,
    ("slab_put_obj", "put"): lambda v: ("obj_to_index: ({obj:#x} - s_mem {s_mem:#x}) / size {size} = {objnr}; "
                                        "page->active {before} -> {active}; set_free_obj: freelist[{active}] = "
                                        "{objnr}").format_map({**v, "before": v["active"] + 1}),
    ("slab_put_obj", "objfreelist"): "page->freelist was NULL (an OBJFREELIST slab that was full): the freed object "
                                     "itself becomes the index array, page->freelist = {freelist:#x}",
    ("slabs_destroy", "destroy"): lambda v: ("{n_slabs} on the detached list, destroyed in list order (the last "
                                             "trimmed first): pfn {pfn_list}").format_map(
                                                 {**v, "n_slabs": _n(v["nr"], "slab")}),
    ("slab_destroy", "slab_destroy"): _en_slab_destroy,
    ("slab_destroy", "off_slab_freelist"): "OFF_SLAB: the freelist lives outside the slab -> "
                                           "kmem_cache_free({freelist_cache}, {obj:#x})",
    ("kmem_freepages", "free_pages"): "PageSlab(pfn {pfn:#x}) holds; __ClearPageSlabPfmemalloc, __ClearPageSlab; "
                                      "page_mapcount_reset (the word shared with page->active becomes -1); "
                                      "page->mapping = NULL (clears slab_cache); {counter} of node {node} -= {bytes}; "
                                      "__free_pages(pfn {pfn:#x}, order {order}): {pages_en} back to the buddy "
                                      "allocator",
    # allocation
    ("__do_kmalloc", "entry"): "kmalloc({size}, {gfp}) on CPU {cpu} (node {node})",
    ("__do_kmalloc", "too_large"): "size {size} > KMALLOC_MAX_CACHE_SIZE {max}: return NULL (5.10 SLAB has no "
                                   "large-kmalloc path)",
    ("__do_kmalloc_node", "entry"): "kmalloc_node({size}, {gfp}, node {node}) on CPU {cpu}",
    ("__do_kmalloc_node", "too_large"): "size {size} > KMALLOC_MAX_CACHE_SIZE {max}: return NULL (5.10 SLAB has no "
                                        "large-kmalloc path)",
    ("kmalloc_slab", "zero"): "size 0 -> ZERO_SIZE_PTR (16): nothing is allocated",
    ("kmalloc_slab", "size_index"): "size {size} <= 192: size_index[({size} - 1) / 8 = {elem}] = {index} -> "
                                    "kmalloc_caches[{kind_name}][{index}] = {cache}",
    ("kmalloc_slab", "fls"): "size {size} > 192: fls({size} - 1) = {index} -> kmalloc_caches[{kind_name}][{index}] = "
                             "{cache}",
    ("slab_alloc", "entry"): "slab_alloc({cache}, {gfp}) on CPU {cpu} (node {node}): IRQs off -> __do_cache_alloc",
    ("slab_alloc", "done"): "IRQs on; returns {obj:#x}",
    ("slab_alloc", "failed"): "no object could be had: returns NULL",
    ("slab_alloc", "init_on_alloc"): "init_on_alloc / __GFP_ZERO: memset({obj:#x}, 0, object_size {object_size})",
    ("slab_alloc_node", "entry"): "slab_alloc_node({cache}, {gfp}, node {node}) on CPU {cpu} (local node {here})",
    ("____cache_alloc", "alloc_hit"): lambda v: ("ac->avail {was} > 0: STATS allochit++, ac->touched = 1; pop the "
                                                 "newest entry ac->entry[{avail}] = {obj:#x} (avail -> {avail})"
                                                 ).format_map({**v, "was": v["avail"] + 1}),
    ("____cache_alloc", "alloc_miss"): "ac->avail 0: this CPU's array is empty, STATS allocmiss++ -> "
                                       "cache_alloc_refill",
    ("cache_alloc_refill", "refill"): _en_refill,
    ("cache_alloc_refill", "refill_shared"): "transfer_objects: {nr} objects from the shared array (its avail now "
                                             "{shared}); shared->touched = 1",
    ("cache_alloc_refill", "refill_slabs"): "{nr} objects taken from the node's slabs; n->free_objects -= {nr} -> "
                                            "{free_objects}",
    ("cache_alloc_refill", "raced"): "the trace shows another CPU growing this cache at the same time: under "
                                     "the lock this CPU found the node empty (its {free_objects} free objects "
                                     "came from that CPU's new slab afterwards)",
    ("cache_alloc_refill", "must_grow"): "the array is still empty: cache_grow_begin(gfp_exact_node(flags), node "
                                         "{node}) for a new slab",
    ("alloc_block", "take"): _en_alloc_block,
    ("fixup_slab_list", "full"): _en_fixup_full,
    ("fixup_slab_list", "partial"): "slab pfn {pfn:#x} active {active} of {num}: head of slabs_partial",
    ("cache_grow_begin", "grow"): "new slab pfn {pfn:#x} (order {order}, {pages_en}) on node {node} at "
                                  "{addr:#x}: colour offset {colour}, {num} objects, freelist {placement}; "
                                  "cache_init_objs sets freelist[i] = i",
    ("cache_grow_begin", "grow_fail"): "kmem_getpages(order {order}, node {node}) failed: no new slab",
    ("kmem_getpages", "pages"): "__alloc_pages_node(node {node}, order {order}) -> pfn {pfn:#x}; {counter} of node "
                                "{node} += {bytes}; __SetPageSlab",
    ("cache_grow_end", "grow_end"): _en_grow_end,
    ("____cache_alloc_node", "node_alloc"): "took {obj:#x} straight from a slab of node {node} (bypassing the "
                                            "per-CPU array)",
    ("fallback_alloc", "fallback"): "no object on the wanted node: try every node with free objects in zonelist "
                                    "order, then grow",
    ("alternate_node_alloc", "alternate"): "memory policy / cpuset spreading picks node {node} instead of {here} -> "
                                           "____cache_alloc_node",
    # reaping and tuning
    ("cache_reap", "reap"): "cache_reap on CPU {cpu} (node {node}) at jiffies {jiffies}",
    ("cache_reap", "reaped"): "{cache}: drain_freelist destroyed {nr} free slab(s)",
    ("drain_array", "touched"): "{cache}: the array ({avail} objects) was used since the last reap: only clear "
                                "->touched",
    ("drain_array", "drained"): "{cache}: free_block the {nr} oldest objects ({avail} left)",
    ("do_tune_cpucache", "tune"): "{cache}: limit {limit}, batchcount {batchcount}, shared {shared}; the old arrays "
                                  "are emptied with free_block",
}

# ---- Chinese -----------------------------------------------------------------------------------


def _zh_kfree_entry(v: _V) -> str:
    if v["obj"] <= 16:
        return "在 CPU {cpu} (节点 {node}) 上 kfree({obj:#x})：先触发 trace_kfree，NULL 也照样记录".format_map(v)
    return ("在 CPU {cpu} (节点 {node}) 上 kfree({obj:#x})：先触发 trace_kfree；{obj:#x} > ZERO_SIZE_PTR (16)，"
            "不是空指针 -> local_irq_save 关中断，调用 virt_to_cache").format_map(v)


def _zh_compound_head(v: _V) -> str:
    s = ("virt_to_page({obj:#x}) = pfn {pfn:#x}；page->compound_head 的 bit 0 为 0：不是尾页，"
         "头页就是它自己").format_map(v)
    if v["order"]:
        return s + f" (它是 order {v['order']} 组合页的头页)"
    return s + " (order 0 的普通页)"


def _zh_push(v: _V) -> str:
    v["prev"] = v["avail"] - 1
    if v.get("node", -1) >= 0:
        return ("节点 {node} 的 alien 数组：entry[{prev}] = {obj:#x}，avail {prev} -> {avail} (limit {limit})"
                .format_map(v))
    return ("ac->entry[{prev}] = {obj:#x}，avail {prev} -> {avail} (limit {limit})：它是最新放入的条目，"
            "本 CPU 下一次分配最先拿到它 (后进先出，缓存仍然是热的)").format_map(v)


def _zh_drain(v: _V) -> str:
    s = "持有节点 {node} 的 list_lock：".format_map(v)
    if v["to_shared"]:
        s += "transfer_objects 把最新的 {to_shared} 个对象移入节点 {node} 的 shared 数组；".format_map(v)
    else:
        s += "transfer_objects 没有移动对象 (节点 {node} 没有 shared 数组或已满)；".format_map(v)
    if not v["to_slabs"]:
        return s + "没有剩下的对象交给 free_block (以 0 个对象调用)；ac->avail = 0"
    return s + "free_block 把剩下的 {to_slabs} 个还给所属 slab；ac->avail = 0".format_map(v)


def _zh_flush_shared(v: _V) -> str:
    v["before"] = v["shared"] - v["nr"]
    return ("shared 数组还有 {room} 个空位 (已用 {before}/{limit})：移动 min(batchcount, 空位) = {nr} 个最旧的对象 "
            "ac->entry[0..{last}] 过去 (shared avail {before} -> {shared})；这次没有对象还给 slab").format_map(v)


def _zh_free_block_check(v: _V) -> str:
    if v["free_objects"] > v["free_limit"]:
        return ("free_objects {free_objects} > free_limit {free_limit}：节点 {node} 上空闲对象过多 -> "
                "只要还有空 slab，就从最冷的 (slabs_free 尾部) 开始归还").format_map(v)
    return "free_objects {free_objects} <= free_limit {free_limit}：不归还任何 slab".format_map(v)


def _zh_trim(v: _V) -> str:
    v["after"] = v["free_objects"] - v.get("num", 0)
    if "num" not in v:
        return ("free_objects {free_objects} > free_limit {free_limit}：最冷的空 slab (slabs_free 尾部) "
                "pfn {pfn:#x} 移到待销毁链表").format_map(v)
    return ("free_objects {free_objects} > free_limit {free_limit}：最冷的空 slab (slabs_free 尾部) pfn {pfn:#x} "
            "移到待销毁链表头；free_objects -= num {num} -> {after}，free_slabs--，total_slabs--").format_map(v)


def _zh_slab_destroy(v: _V) -> str:
    if v.get("rcu"):
        return ("slab pfn {pfn:#x}：SLAB_TYPESAFE_BY_RCU -> call_rcu(kmem_rcu_free)：RCU 宽限期结束后才把页还回去"
                ).format_map(v)
    return "slab pfn {pfn:#x}：缓存没有 SLAB_TYPESAFE_BY_RCU 标志 -> 立即 kmem_freepages".format_map(v)


def _zh_refill(v: _V) -> str:
    s = "batchcount {batch}".format_map(v)
    if not v["touched"]:
        s += " (ac->touched 为 0，自上次回收以来未被使用：最多取 BATCHREFILL_LIMIT = 16 个)"
    s += "；节点 free_objects {free_objects}".format_map(v)
    s += "，shared avail {shared}".format_map(v) if v["shared"] >= 0 else "，没有 shared 数组"
    if not v["free_objects"] and v["shared"] <= 0:
        s += "：本节点没有可取的对象"
    return s


def _zh_alloc_block(v: _V) -> str:
    v["take"] = min(v["batch"], v["num"] - v["active"])
    v["src_text"] = {"partial": "slabs_partial 链表头", "free": "slabs_free 链表头",
                     "new": "新建的 slab"}.get(v["src"], v["src"])
    return ("slab pfn {pfn:#x} ({src_text})，active {active}/{num}：按 freelist 顺序取 min(batch {batch}, 空闲 {free}) "
            "= {take} 个对象").format_map(v)


def _zh_fixup_full(v: _V) -> str:
    s = "slab pfn {pfn:#x} active {active}/{num}：放到 slabs_full 链表头".format_map(v)
    if v.get("objfreelist"):
        s += "；OBJFREELIST：page->freelist = NULL (索引数组所在的对象已经分配出去)"
    return s


def _zh_grow_end(v: _V) -> str:
    s = "持有节点 list_lock：total_slabs -> {total_slabs}；".format_map(v)
    if not v["active"]:
        s += "active 为 0：slab pfn {pfn:#x} 放到 slabs_free 链表尾 (free_slabs++)".format_map(v)
    else:
        s += "active {active}/{num}：由 fixup_slab_list 放置 slab pfn {pfn:#x}".format_map(v)
    return s + "；free_objects += {free} -> {free_objects}".format_map(v)


ZH: dict[tuple[str, str], Template] = {
    ("kfree", "entry"): _zh_kfree_entry,
    ("kfree", "null"): "objp {obj:#x} <= ZERO_SIZE_PTR (16)：是 NULL 或 ZERO_SIZE_PTR，立即返回 (kfree 事件已经记录)",
    ("kfree", "enter"): "对象属于 {cache}；debug_check_no_locks_freed (LOCKDEP) 与 debug_check_no_obj_freed "
                        "(DEBUG_OBJECTS_FREE) 在这里不起作用 -> __cache_free，之后 local_irq_restore 开中断",
    ("virt_to_head_page", "free_page"): "virt_to_page({obj:#x}) = pfn {pfn:#x}：该页没有被任何人分配 (空闲内存)，"
                                        "flags 中没有 PG_slab",
    ("compound_head", "tail"): "virt_to_page({obj:#x}) = pfn {pfn:#x}；page->compound_head = {word:#x}，bit 0 为 1："
                               "这是组合页的尾页 (TAIL)，该字保存的是头页 struct page 的地址 + 1 -> 头页 pfn "
                               "{head_pfn:#x} (组合页 order {order})",
    ("compound_head", "head"): _zh_compound_head,
    ("virt_to_cache", "slab_page"): "PageSlab(pfn {pfn:#x}) 为真 -> page->slab_cache = {cache}",
    ("virt_to_cache", "not_slab"): "PageSlab 为假：{obj:#x} 不在 slab 页中 (页分配器分配的页、静态对象，或指向已销毁 "
                                   "slab 的过期指针) -> WARN_ONCE \"virt_to_cache: Object is not a Slab page!\"，"
                                   "返回 NULL：这次释放被忽略",
    ("kmem_cache_free", "entry"): "在 CPU {cpu} (节点 {node}) 上 kmem_cache_free({cache}, {obj:#x})",
    ("kmem_cache_free", "enter"): "cache_from_obj -> {cache}；关中断 -> __cache_free (kmem_cache_free 事件在释放之后"
                                  "才记录)",
    ("__cache_free", "hooks"): "kasan_slab_free：没有 KASAN，不进隔离区；KCSAN (数据竞争检测器) 的断言没有编译进来 -> "
                               "___cache_free",
    ("___cache_free", "init_on_free"): "init_on_free：memset({obj:#x}, 0, object_size {object_size})：清零的是调用者"
                                       "申请的大小，不是含对齐填充的步长 size {size}",
    ("___cache_free", "init_on_free_skip"): "虽然开启了 init_on_free，但该缓存有构造函数或 SLAB_TYPESAFE_BY_RCU / "
                                            "SLAB_POISON 标志，slab_want_init_on_free 为假：不清零",
    ("___cache_free", "debugcheck"): "CONFIG_DEBUG_SLAB：cache_free_debugcheck 按缓存标志检查红区、记录调用者、"
                                     "填充毒化值；objp = {obj:#x}",
    ("___cache_free", "one_node"): "nr_online_nodes = {nodes}：不做 alien 检查，对象一定属于本节点",
    ("___cache_free", "freehit"): "ac->avail {avail} < ac->limit {limit}：本 CPU 的数组还有空间，STATS freehit++",
    ("___cache_free", "freemiss"): "ac->avail {avail} == ac->limit {limit}：本 CPU 的数组已满 (avail 不会超过 limit)，"
                                   "STATS freemiss++ -> 先 cache_flusharray，再放入这个对象",
    ("___cache_free", "pfmemalloc"): "sk_memalloc_socks 为真且该 slab 来自紧急保留内存 (PageSlabPfmemalloc)："
                                     "cache_free_pfmemalloc 直接把对象还给节点 {node} 上的 slab，不进数组",
    ("cache_free_alien", "local"): "page_to_nid = {page_node} == numa_mem_id() = {node}：本节点的对象 -> 返回 0，"
                                   "继续使用本 CPU 的数组",
    ("cache_free_alien", "alien"): "page_to_nid = {page_node} != numa_mem_id() = {node}：对象所在的 slab 属于节点 "
                                   "{page_node} -> __cache_free_alien (之后 ___cache_free 直接返回)",
    ("__cache_free_alien", "alien_stage"): "STATS node_frees++；节点 {node} 的 alien[{page_node}] 已有 "
                                           "{avail}/{limit} 个对象：还有空间，对象暂存在这里",
    ("__cache_free_alien", "alien_overflow"): "STATS node_frees++；节点 {node} 的 alien[{page_node}] 已满 (avail "
                                              "{avail} == limit {limit})：STATS node_overflow++ -> 先调用 "
                                              "__drain_alien_cache",
    ("__cache_free_alien", "alien_direct"): "STATS node_frees++；没有为节点 {page_node} 准备的 alien 数组 "
                                            "(noaliencache 或尚未建立)：持节点 {page_node} 的 list_lock 直接 "
                                            "free_block 还给它的 slab",
    ("__drain_alien_cache", "alien_drain"): _zh_drain,
    ("__free_one", "push"): _zh_push,
    ("__free_one", "hardened_drop"): "CONFIG_SLAB_FREELIST_HARDENED：ac->entry[avail-1] 已经是 {obj:#x}，这是紧接着"
                                     "的重复释放 -> WARN_ON_ONCE，并丢弃这次释放",
    ("cache_flusharray", "flush_shared"): _zh_flush_shared,
    ("cache_flusharray", "shared_full"): "节点的 shared 数组已满 ({limit}/{limit})：没有空位",
    ("cache_flusharray", "no_shared"): "该节点没有 shared 数组 (单 CPU、对象大于一页，或 shared 为 0)",
    ("cache_flusharray", "flush_free_block"): "free_block 把最旧的 {nr} 个对象 ac->entry[0..{last}] 还给各自的 slab "
                                              "(还的是对象而不是页：只有被裁剪的空 slab 才把页还回去)",
    ("cache_flusharray", "slide"): "ac->avail -= {nr} -> {avail}；memmove 把剩下的 {avail} 个条目移到 entry[0] 开始 "
                                   "(热的一端仍在顶部)",
    ("free_block", "entry"): "节点 {node}，持有 list_lock：n->free_objects += {nr} -> {free_objects}；逐个把对象"
                             "还给所属 slab",
    ("free_block", "to_free"): "slab pfn {pfn:#x} (原在 {was_list})：active 为 0 -> 放到 slabs_free 链表头，"
                               "free_slabs++",
    ("free_block", "to_partial"): "slab pfn {pfn:#x} (原在 {was_list})：active {active}/{num} -> 放到 slabs_partial "
                                  "链表尾",
    ("free_block", "free_block"): _zh_free_block_check,
    ("free_block", "trim"): _zh_trim,
    ("slab_put_obj", "put"): lambda v: ("obj_to_index：({obj:#x} - s_mem {s_mem:#x}) / size {size} = {objnr}；"
                                        "page->active {before} -> {active}；set_free_obj：freelist[{active}] = "
                                        "{objnr}").format_map({**v, "before": v["active"] + 1}),
    ("slab_put_obj", "objfreelist"): "page->freelist 为 NULL (原本全满的 OBJFREELIST slab)：被释放的对象本身成为"
                                     "索引数组，page->freelist = {freelist:#x}",
    ("slabs_destroy", "destroy"): "待销毁链表上有 {nr} 个 slab，按链表顺序销毁 (最后裁剪的最先销毁)：pfn {pfn_list}",
    ("slab_destroy", "slab_destroy"): _zh_slab_destroy,
    ("slab_destroy", "off_slab_freelist"): "OFF_SLAB：freelist 存放在 slab 之外 -> "
                                           "kmem_cache_free({freelist_cache}, {obj:#x})",
    ("kmem_freepages", "free_pages"): "PageSlab(pfn {pfn:#x}) 成立；__ClearPageSlabPfmemalloc、__ClearPageSlab；"
                                      "page_mapcount_reset (与 page->active 共用的字置为 -1)；page->mapping = NULL "
                                      "(即清除 slab_cache)；节点 {node} 的 {counter} -= {bytes}；"
                                      "__free_pages(pfn {pfn:#x}, order {order})：{pages} 个页还给伙伴系统",
    # allocation
    ("__do_kmalloc", "entry"): "在 CPU {cpu} (节点 {node}) 上 kmalloc({size}, {gfp})",
    ("__do_kmalloc", "too_large"): "size {size} > KMALLOC_MAX_CACHE_SIZE {max}：返回 NULL (5.10 的 SLAB 没有大块 "
                                   "kmalloc 路径)",
    ("__do_kmalloc_node", "entry"): "在 CPU {cpu} 上 kmalloc_node({size}, {gfp}, 节点 {node})",
    ("__do_kmalloc_node", "too_large"): "size {size} > KMALLOC_MAX_CACHE_SIZE {max}：返回 NULL (5.10 的 SLAB 没有"
                                        "大块 kmalloc 路径)",
    ("kmalloc_slab", "zero"): "size 为 0 -> 返回 ZERO_SIZE_PTR (16)：不分配任何对象",
    ("kmalloc_slab", "size_index"): "size {size} <= 192：查表 size_index[({size} - 1) / 8 = {elem}] = {index} -> "
                                    "kmalloc_caches[{kind_name}][{index}] = {cache}",
    ("kmalloc_slab", "fls"): "size {size} > 192：取 fls({size} - 1) = {index} -> kmalloc_caches[{kind_name}][{index}] "
                             "= {cache}",
    ("slab_alloc", "entry"): "在 CPU {cpu} (节点 {node}) 上 slab_alloc({cache}, {gfp})：关中断 -> __do_cache_alloc",
    ("slab_alloc", "done"): "开中断；返回 {obj:#x}",
    ("slab_alloc", "failed"): "没能得到对象：返回 NULL",
    ("slab_alloc", "init_on_alloc"): "init_on_alloc / __GFP_ZERO：memset({obj:#x}, 0, object_size {object_size}) 清零",
    ("slab_alloc_node", "entry"): "在 CPU {cpu} (本地节点 {here}) 上 slab_alloc_node({cache}, {gfp}, 节点 {node})",
    ("____cache_alloc", "alloc_hit"): lambda v: ("ac->avail {was} > 0：STATS allochit++，ac->touched = 1；弹出最新的"
                                                 "条目 ac->entry[{avail}] = {obj:#x} (avail -> {avail})"
                                                 ).format_map({**v, "was": v["avail"] + 1}),
    ("____cache_alloc", "alloc_miss"): "ac->avail 为 0：本 CPU 的数组为空，STATS allocmiss++ -> cache_alloc_refill",
    ("cache_alloc_refill", "refill"): _zh_refill,
    ("cache_alloc_refill", "refill_shared"): "transfer_objects：从 shared 数组取得 {nr} 个对象 (shared 剩余 "
                                             "{shared})；shared->touched = 1",
    ("cache_alloc_refill", "refill_slabs"): "从节点的 slab 取得 {nr} 个对象；n->free_objects -= {nr} -> "
                                            "{free_objects}",
    ("cache_alloc_refill", "raced"): "trace 显示另一个 CPU 同时在为该 cache 增长 slab：本 CPU 持锁检查时节点为空"
                                     "（现有的 {free_objects} 个空闲对象来自那个 CPU 随后加入的新 slab）",
    ("cache_alloc_refill", "must_grow"): "数组仍为空：cache_grow_begin(gfp_exact_node(flags), 节点 {node}) 申请新 slab",
    ("alloc_block", "take"): _zh_alloc_block,
    ("fixup_slab_list", "full"): _zh_fixup_full,
    ("fixup_slab_list", "partial"): "slab pfn {pfn:#x} active {active}/{num}：放到 slabs_partial 链表头",
    ("cache_grow_begin", "grow"): "新 slab pfn {pfn:#x} (order {order}，{pages} 页) 位于节点 {node}，地址 {addr:#x}："
                                  "着色偏移 {colour}，{num} 个对象，freelist 放置方式 {placement}；cache_init_objs 令 "
                                  "freelist[i] = i",
    ("cache_grow_begin", "grow_fail"): "kmem_getpages(order {order}, 节点 {node}) 失败：没有新 slab",
    ("kmem_getpages", "pages"): "__alloc_pages_node(节点 {node}, order {order}) -> pfn {pfn:#x}；节点 {node} 的 "
                                "{counter} += {bytes}；__SetPageSlab",
    ("cache_grow_end", "grow_end"): _zh_grow_end,
    ("____cache_alloc_node", "node_alloc"): "直接从节点 {node} 的 slab 取得 {obj:#x} (绕过 per-CPU 数组)",
    ("fallback_alloc", "fallback"): "目标节点没有对象：按 zonelist 顺序尝试每个有空闲对象的节点，最后再扩展",
    ("alternate_node_alloc", "alternate"): "内存策略 / cpuset 分散选择了节点 {node} 而不是 {here} -> "
                                           "____cache_alloc_node",
    # reaping and tuning
    ("cache_reap", "reap"): "在 CPU {cpu} (节点 {node}) 上运行 cache_reap，jiffies {jiffies}",
    ("cache_reap", "reaped"): "{cache}：drain_freelist 销毁了 {nr} 个空 slab",
    ("drain_array", "touched"): "{cache}：数组 ({avail} 个对象) 自上次回收后被使用过：只清除 ->touched",
    ("drain_array", "drained"): "{cache}：free_block 最旧的 {nr} 个对象 (剩余 {avail} 个)",
    ("do_tune_cpucache", "tune"): "{cache}：limit {limit}，batchcount {batchcount}，shared {shared}；旧数组用 "
                                  "free_block 清空",
}

TEMPLATES: dict[str, dict[tuple[str, str], Template]] = {"en": EN, "zh": ZH}

CALLS_TEXT = {"en": "{func}: calls {callee}", "zh": "{func}: 调用 {callee}"}
# what a silent function does on the way to its callee, where that is always the same
CALLS_SPECIAL: dict[tuple[str, str], dict[str, str]] = {
    ("virt_to_cache", "virt_to_head_page"): {"en": "page = virt_to_head_page(objp)",
                                             "zh": "page = virt_to_head_page(objp)"},
    ("virt_to_head_page", "compound_head"): {"en": "compound_head(virt_to_page(objp))",
                                             "zh": "compound_head(virt_to_page(objp))"},
    ("___cache_free", "cache_free_alien"): {"en": "nr_online_nodes > 1: cache_free_alien checks the object's node",
                                            "zh": "nr_online_nodes > 1：由 cache_free_alien 检查对象所属节点"},
    ("__do_cache_alloc", "____cache_alloc"): {"en": "NUMA build: ____cache_alloc (this CPU's array) first, "
                                                    "____cache_alloc_node only if it returns NULL",
                                              "zh": "NUMA 内核：先 ____cache_alloc (本 CPU 的数组)，返回 NULL 时才"
                                                    "调用 ____cache_alloc_node"},
    ("cache_grow_begin", "kmem_getpages"): {"en": "check the gfp flags, then kmem_getpages for the slab's pages",
                                            "zh": "检查 gfp 标志，然后 kmem_getpages 申请 slab 的页"},
}
ELIDED_TEXT = {
    "en": "free_block: ... {n} more objects returned the same way: {partial} to the tail of slabs_partial, {free} to "
          "the head of slabs_free ({slabs_text}; --full shows every object) ...",
    "zh": "free_block: …… 另有 {n} 个对象按同样方式归还：{partial} 个所在 slab 放到 slabs_partial 尾，{free} 个所在 "
          "slab 放到 slabs_free 头 (涉及 {slabs} 个 slab；--full 显示每个对象) ……",
}


def render_step(func: str, key: str, values: dict[str, Any], lang: str = "en") -> str:
    """One step as ``function: decision`` (without indentation)."""
    if lang not in TEMPLATES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    t = TEMPLATES[lang].get((func, key))
    if t is None:
        return generic(func, key, values)
    v = _derive(values)
    try:
        text = t(v) if callable(t) else t.format_map(v)
    except (KeyError, ValueError, TypeError, IndexError):
        return generic(func, key, values)
    return f"{func}: {text}"


# ---- eliding long per-object loops -------------------------------------------------------------

_LOOP_END = frozenset({("free_block", "to_free"), ("free_block", "to_partial")})


def _elide(lines: list[Line], keep_head: int = 3, keep_tail: int = 1) -> list[Line | tuple[int, dict[str, int]]]:
    """Shorten each free_block call that returns many objects: keep the first and last iterations."""
    out: list[Line | tuple[int, dict[str, int]]] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        out.append(ln)
        i += 1
        if (ln.func, ln.key) != ("free_block", "entry"):
            continue
        d = ln.depth
        iters: list[list[Line]] = []
        cur: list[Line] = []
        while i < len(lines):
            x = lines[i]
            if x.depth > d or (x.depth == d and (x.func, x.key) in _LOOP_END):
                cur.append(x)
                i += 1
                if x.depth == d:
                    iters.append(cur)
                    cur = []
                continue
            break
        if len(iters) > keep_head + keep_tail + 1:
            middle = iters[keep_head:len(iters) - keep_tail]
            ends = [it[-1] for it in middle]
            summary = {"n": len(middle), "partial": sum(1 for e in ends if e.key == "to_partial"),
                       "free": sum(1 for e in ends if e.key == "to_free"),
                       "slabs": len({e.values.get("pfn") for e in ends})}
            for it in iters[:keep_head]:
                out.extend(it)
            out.append((d, summary))
            for it in iters[len(iters) - keep_tail:]:
                out.extend(it)
        else:
            for it in iters:
                out.extend(it)
        out.extend(cur)
    return out


def narrate(steps: Iterable[Step], lang: str = "en", *, full: bool = False, indent: str = "  ") -> str:
    """Render steps as text: one line per step, ``function: decision with the values``, indented by
    call depth.  Long free_block loops are shortened unless ``full``."""
    if lang not in TEMPLATES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    lines = layout(steps)
    items: list[Line | tuple[int, dict[str, int]]] = list(lines) if full else _elide(lines)
    out = []
    for it in items:
        if isinstance(it, tuple):
            depth, summary = it
            out.append(indent * depth + ELIDED_TEXT[lang].format_map({**summary,
                                                                      "slabs_text": _n(summary["slabs"], "slab")}))
        elif it.synthetic:
            special = CALLS_SPECIAL.get((it.func, it.values["callee"]))
            text = (f"{it.func}: {special[lang]}" if special is not None
                    else CALLS_TEXT[lang].format(func=it.func, callee=it.values["callee"]))
            out.append(indent * it.depth + text)
        else:
            out.append(indent * it.depth + render_step(it.func, it.key, it.values, lang))
    return "\n".join(out) + ("\n" if out else "")


# ---- the header of an explained operation ------------------------------------------------------

def _n(count: int, word: str) -> str:
    """``1 CPU``, ``2 CPUs``, ``1 page``, ``4 slabs`` (English only)."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def _mem(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def _setup_line(s: dict[str, Any], lang: str) -> str:
    do = s.get("do")
    if lang == "zh":
        if do == "kmalloc":
            where = f"CPU {s['cpu']}" + (f" (节点 {s['node']})" if "node" in s else "")
            return f"在 {where} 上 kmalloc({s['size']}) {s['count']} 次"
        if do == "kfree":
            if "ptr" in s:
                return f"在 CPU {s['cpu']} 上 kfree({s['ptr']:#x})"
            return f"在 CPU {s['cpu']} 上按分配顺序 kfree 其中 {s['count']} 个"
        if do == "alloc_pages":
            return (f"alloc_pages({s['gfp']}, order {s['order']}) -> pfn {s['pfn']:#x} (节点 {s['node']}，"
                    "组合页，不是 slab)")
    else:
        if do == "kmalloc":
            where = f"CPU {s['cpu']}" + (f" (node {s['node']})" if "node" in s else "")
            return f"kmalloc({s['size']}) x {s['count']} on {where}"
        if do == "kfree":
            if "ptr" in s:
                return f"kfree({s['ptr']:#x}) on CPU {s['cpu']}"
            return f"kfree of the first {s['count']} of them on CPU {s['cpu']}, in allocation order"
        if do == "alloc_pages":
            return (f"alloc_pages({s['gfp']}, order {s['order']}) -> pfn {s['pfn']:#x} on node {s['node']} "
                    "(a compound page, not slab)")
    return generic("setup", str(do), {k: v for k, v in s.items() if k != "do"})


def _node_line(nd: dict[str, Any], lang: str) -> str:
    zh = lang == "zh"
    if nd["shared_avail"] is None:
        shared = "无 shared 数组" if zh else "no shared array"
    else:
        shared = f"shared {nd['shared_avail']}/{nd['shared_limit']}"
    if zh:
        s = (f"节点 {nd['node']}：{shared}；slab 共 {nd['total_slabs']} 个 (slabs_free {nd['slabs_free']}，"
             f"slabs_partial {nd['slabs_partial']}，slabs_full {nd['slabs_full']})，free_objects {nd['free_objects']}，"
             f"free_limit {nd['free_limit']}")
    else:
        s = (f"node {nd['node']}: {shared}; {_n(nd['total_slabs'], 'slab')} ({nd['slabs_free']} free, "
             f"{nd['slabs_partial']} partial, {nd['slabs_full']} full), free_objects {nd['free_objects']}, "
             f"free_limit {nd['free_limit']}")
    if nd["alien"]:
        al = ", ".join(f"alien[{a['node']}] {a['avail']}/{a['limit']}" for a in nd["alien"])
        s += ("；" if zh else "; ") + al
    return s


def render_header(ex: Explanation, lang: str = "en", summary: str = "") -> str:
    """What was set up and the state that decides the operation, in ``lang``."""
    zh = lang == "zh"
    out = []
    sep = "：" if zh else ": "
    if ex.scenario:
        out.append(("场景 " if zh else "scenario ") + ex.scenario + (sep + summary if summary else ""))
    m = ex.machine
    if m:
        numa = "CONFIG_NUMA=y" if m["numa"] else "CONFIG_NUMA=n"
        opts = ", ".join([numa, *m["options"]])
        if zh:
            out.append(f"机器：{m['cpus']} 个 CPU，{m['nodes']} 个节点，内存 {_mem(m['mem'])}，{opts}")
        else:
            out.append(f"machine: {_n(m['cpus'], 'CPU')}, {_n(m['nodes'], 'node')}, {_mem(m['mem'])}, {opts}")
    if ex.setup:
        steps = ("；" if zh else "; ").join(_setup_line(s, lang) for s in ex.setup)
        out.append(("准备：" if zh else "set up: ") + steps)
    st = ex.state
    if "cache" in st:
        per = f"每个 slab {st['num']} 个对象" if zh else f"{_n(st['num'], 'object')} per slab"
        pages = 1 << st["order"]
        if zh:
            out.append(f"缓存 {st['cache']}：object_size {st['object_size']}，size {st['size']}，{per}，"
                       f"order {st['order']} ({pages} 页)，freelist 放置方式 {st['placement']}；limit {st['limit']}，"
                       f"batchcount {st['batchcount']}，shared {st['shared']}")
        else:
            out.append(f"cache {st['cache']}: object_size {st['object_size']}, size {st['size']}, {per}, "
                       f"order {st['order']} ({_n(pages, 'page')}), freelist {st['placement']}; limit {st['limit']}, "
                       f"batchcount {st['batchcount']}, shared {st['shared']}")
        full = st["ac_avail"] == st["ac_limit"]
        if zh:
            arr = (f"CPU {st['cpu']} 的 array_cache avail {st['ac_avail']}/{st['ac_limit']}"
                   + (" (已满)" if full else " (空)" if not st["ac_avail"] else ""))
            out.append("操作前：" + arr)
        else:
            arr = (f"CPU {st['cpu']} array_cache avail {st['ac_avail']}/{st['ac_limit']}"
                   + (" (full)" if full else " (empty)" if not st["ac_avail"] else ""))
            out.append("before: " + arr)
        for nd in st["nodes"]:
            out.append("  " + _node_line(nd, lang))
    op = ex.operation
    call = op.get("call", "?")
    if call == "kfree":
        text = f"kfree({op['ptr']:#x})"
    elif call == "kmalloc":
        text = f"kmalloc({op['size']}, GFP_KERNEL)"
    else:
        text = generic(call, "", {k: v for k, v in op.items() if k not in ("call", "cpu")}).rstrip(": ")
    node = st.get("node", 0)
    out.append(f"操作：在 CPU {op.get('cpu', 0)} (节点 {node}) 上 {text}" if zh
               else f"operation: {text} on CPU {op.get('cpu', 0)} (node {node})")
    return "\n".join(out) + "\n"


def render_explanation(ex: Explanation, lang: str = "en", *, summary: str = "", full: bool = False) -> str:
    """Header, a blank line, then the narration."""
    return render_header(ex, lang, summary) + "\n" + narrate(ex.steps, lang, full=full)
