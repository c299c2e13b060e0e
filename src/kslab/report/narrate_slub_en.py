"""The English templates of SLUB's narration (mm/slub.c, 6.12): (kernel function, step key) -> template.

As :mod:`kslab.report.narrate_en` is for SLAB: a ``str.format_map`` text over the step's values (and the
derived fields of ``narrate._derive``), or a function of them where the wording depends on a value.  The steps
are recorded by ``kslab.mm.slub`` (``mm.explain.step(FUNC, KEY, ...)``).
"""

from __future__ import annotations

from .narrate_types import Template, Values, plural

__all__ = ["SLUB_EN"]


def _node(v: Values) -> str:
    return "any node (NUMA_NO_NODE)" if v["node"] < 0 else f"node {v['node']}"


def _entry(v: Values) -> str:
    s = "slab_alloc_node({cache}, {gfp}) on CPU {cpu}, for ".format_map(v) + _node(v) + ": "
    if not v["pfn"]:
        return s + "c->slab is NULL (no cpu slab), c->freelist NULL, tid {tid}".format_map(v)
    if not v["freelist"]:
        return s + "cpu slab pfn {pfn:#x}, c->freelist NULL (every object of it handed out), tid {tid}".format_map(v)
    return s + "cpu slab pfn {pfn:#x}, c->freelist {freelist:#x}, tid {tid}".format_map(v)


def _slow_reason(what: str) -> Template:
    def t(v: Values) -> str:
        return what.format_map(v) + " -> __slab_alloc (irqs off) -> ___slab_alloc, STATS alloc_slowpath++"
    return t


def _kmalloc(v: Values) -> str:
    call = "kmalloc({size}, {gfp})" if v["node"] < 0 else "kmalloc_node({size}, {gfp}, {node})"
    return (call + " on CPU {cpu}: size <= KMALLOC_MAX_CACHE_SIZE (8192): kmalloc_slab -> {cache} (objects of {stride} "
            "bytes)").format_map(v)


def _refill(v: Values) -> str:
    return ("c->freelist is NULL, but cpu slab pfn {pfn:#x} got ".format_map(v) + plural(v["nr"], "object")
            + " freed by other CPUs onto slab->freelist: get_freelist takes them all (the slab stays frozen), "
              "STATS alloc_refill++")


def _new_slab(v: Values) -> str:
    return ("nothing partial: new_slab -> slab pfn {pfn:#x} on node {node} with ".format_map(v)
            + plural(v["objects"], "free object") + "; STATS alloc_slab++, inc_slabs_node, frozen, c->slab = it")


def _free_entry(v: Values) -> str:
    if v["cpu_pfn"]:
        where = "the CPU's cpu slab is pfn {cpu_pfn:#x}".format_map(v)
    else:
        where = "the CPU has no cpu slab"
    if v["pfn"] == v["cpu_pfn"]:
        return ("{obj:#x} ({nr}) is in slab pfn {pfn:#x}, and " + where + ": lockless fast path, the objects go in "
                "front of c->freelist (set_freepointer(tail, {freelist_ptr})), tid {tid} -> next_tid, STATS "
                "free_fastpath += {nr}").format_map(v)
    return ("{obj:#x} ({nr}) is in slab pfn {pfn:#x}, but " + where + ": __slab_free, STATS "
            "free_slowpath++").format_map(v)


def _slab_free(key: str) -> Template:
    texts = {
        "frozen": "slab pfn {pfn:#x} is frozen (some CPU's cpu slab): the objects only go onto slab->freelist, "
                  "inuse -> {inuse}; that CPU finds them at its next refill. STATS free_frozen++",
        "to_cpu_partial": "slab pfn {pfn:#x} was full (slab->freelist was NULL, on no list): now it has {nr} "
                          "free, and put_cpu_partial puts it on this CPU's partial list (no node lock), "
                          "STATS cpu_partial_free++",
        "stays": "slab pfn {pfn:#x} had free objects and still has {inuse} of {objects} in use: it stays on the "
                 "list it is on, no lock taken",
        "on_cpu_partial": "slab pfn {pfn:#x} is now empty but sits on a per-CPU partial list (not on node {node}'s "
                          "list): it stays there until that list is drained",
        "discard": "slab pfn {pfn:#x} is now empty (inuse 0) and node {node} has nr_partial {nr_partial} >= "
                   "min_partial {min_partial}: slab_empty -> {removed}discard_slab, STATS free_slab++",
        "add_partial": "slab pfn {pfn:#x} was full: no per-CPU partial lists, so add_partial puts it at the tail of "
                       "node {node}'s partial list, STATS free_add_partial++",
        "keep_partial": "slab pfn {pfn:#x} is now empty, but node {node} has only nr_partial {nr_partial} < "
                        "min_partial {min_partial}: it stays on the node's partial list",
    }
    text = texts[key]

    def t(v: Values) -> str:
        v["removed"] = ("remove_partial (it was on the node's list, STATS free_remove_partial++), " if v.get("prior")
                        else "")
        return "n->list_lock held; " + text.format_map(v) if key in ("discard", "add_partial",
                                                                           "keep_partial") else text.format_map(v)
    return t


def _allocate_oo(v: Values) -> str:
    return ("alloc_slab_page(order {order} = oo's, __GFP_NOWARN | __GFP_NORETRY, no __GFP_NOFAIL) -> pfn {pfn:#x} "
            "on node {node} at {addr:#x}: {objects} objects of {size} bytes, free pointers threaded in address order "
            "(no CONFIG_SLAB_FREELIST_RANDOM)").format_map(v)


def _allocate_fallback(v: Values) -> str:
    return ("order {oo_order} (oo, {oo_objects} objects) failed: fall back to s->min, order {order} -> pfn {pfn:#x} "
            "on node {node} with ".format_map(v) + plural(v["objects"], "object") + ", STATS order_fallback++")


def _deactivate(key: str) -> Template:
    outcome = {
        "empty": "inuse 0 and node {node} has nr_partial {nr_partial} >= min_partial {min_partial}: discard_slab, "
                 "STATS deactivate_empty++, free_slab++",
        "to_head": "it has free objects: add_partial at the head of node {node}'s partial list, STATS "
                   "deactivate_to_head++",
        "to_tail": "it has free objects, some freed remotely while it was frozen: add_partial at the tail of node "
                   "{node}'s partial list, STATS deactivate_remote_frees++, deactivate_to_tail++",
        "full": "no free object: it is on no list (a full slab), STATS deactivate_full++",
    }[key]

    def t(v: Values) -> str:
        s = ("slab pfn {pfn:#x}: the CPU freelist's ".format_map(v) + plural(v["returned"], "object")
             + " go back in front of slab->freelist, unfrozen, inuse {inuse} of {objects}; ".format_map(v))
        return s + outcome.format_map(v)
    return t


def _put_cpu_partial(v: Values) -> str:
    if v["drained"]:
        return ("this CPU's partial list already holds {drained} slabs >= cpu_partial_slabs {limit}: it goes to the "
                "nodes first (__put_partials, STATS cpu_partial_drain++); slab pfn {pfn:#x} starts a new list, "
                "slabs = 1").format_map(v)
    return ("slab pfn {pfn:#x} goes to the head of this CPU's partial list, slabs {slabs} (cpu_partial_slabs "
            "{limit})").format_map(v)


def _flush(v: Values) -> str:
    s = "flush work on CPU {cpu}: ".format_map(v)
    s += ("cpu slab pfn {pfn:#x} -> flush_slab (deactivate_slab, STATS cpuslab_flush++)".format_map(v) if v["pfn"]
          else "no cpu slab")
    if v["partial"]:
        return s + "; the " + plural(v["partial"], "slab") + " of the per-CPU partial list -> put_partials_cpu"
    return s + "; the per-CPU partial list is empty"


def _shrink_node(v: Values) -> str:
    s = "node {node}: ".format_map(v)
    s += plural(v["discarded"], "empty slab") + " off the partial list and freed"
    s += "; " + plural(v["promoted"], "slab") + " with at most SHRINK_PROMOTE_MAX (32) free objects moved to the head, "
    s += "fullest first; nr_partial now {nr_partial}".format_map(v)
    if v["head"]:
        s += ", list head " + ", ".join(f"{p:#x}" for p in v["head"])
    return s


def _shrink_entry(v: Values) -> str:
    cpus = v["cpus"]
    if not cpus:
        return "kmem_cache_shrink({cache}): no CPU has a cpu slab or partial slabs".format_map(v)
    return ("kmem_cache_shrink({cache}): flush_all first, on the CPUs with a cpu slab or partial slabs: "
            .format_map(v) + ", ".join(str(c) for c in cpus))


def _any_try(v: Values) -> str:
    return ("a zone of node {node} in the zonelist: nr_partial {nr_partial} > min_partial {min_partial}: it can "
            "spare a slab -> "
            "get_partial_node").format_map(v)


def _bulk_done(v: Values) -> str:
    return ("{size} objects: {fast} straight off c->freelist (STATS alloc_fastpath each), the others from "
            "___slab_alloc; tid -> {tid} once at the end").format_map(v)


SLUB_EN: dict[tuple[str, str], Template] = {
    ("__do_kmalloc_node", "cache"): _kmalloc,
    ("__do_kmalloc_node", "large"): "kmalloc({size}) on CPU {cpu}: size > KMALLOC_MAX_CACHE_SIZE ({limit}): "
                                    "___kmalloc_large_node takes order-{order} pages from the buddy allocator, no slab",
    ("__do_kmalloc_node", "zero"): "kmalloc(0) on CPU {cpu}: ZERO_SIZE_PTR (16), nothing allocated",
    ("slab_alloc_node", "entry"): _entry,
    ("slab_alloc_node", "done"): "returns {obj:#x}",
    ("slab_alloc_node", "failed"): "returns NULL: out of memory",
    ("__slab_alloc_node", "fastpath"): "c->freelist {obj:#x} on the right node: lockless fast path, "
                                       "this_cpu_cmpxchg_double(freelist, tid) -> freelist = get_freepointer() = "
                                       "{next_ptr}, tid {tid}; STATS alloc_fastpath++",
    ("__slab_alloc_node", "no_cpu_slab"): _slow_reason("no cpu slab"),
    ("__slab_alloc_node", "no_freelist"): _slow_reason("c->freelist is NULL"),
    ("__slab_alloc_node", "node_mismatch"): _slow_reason("the cpu slab is on node {slab_node}, not the node asked"),
    ("___slab_alloc", "no_cpu_slab"): "c->slab is NULL on CPU {cpu} -> new_slab: the per-CPU partial list first",
    ("___slab_alloc", "node_mismatch"): "cpu slab pfn {pfn:#x} is on node {slab_node}, node {node} asked: STATS "
                                        "alloc_node_mismatch++, c->slab = NULL -> deactivate_slab",
    ("___slab_alloc", "cpu_freelist"): "c->freelist {obj:#x} is set again (the slab is still this CPU's) -> "
                                       "load_freelist",
    ("___slab_alloc", "refill"): _refill,
    ("___slab_alloc", "bypass"): "c->freelist is NULL and cpu slab pfn {pfn:#x} has no free object left "
                                 "(get_freelist: NULL, the slab unfrozen and on no list, full): c->slab = NULL, "
                                 "STATS deactivate_bypass++ -> new_slab",
    ("___slab_alloc", "cpu_partial"): "the head of this CPU's partial list, slab pfn {pfn:#x} ({free} of {objects} "
                                      "free), is on the right node: it becomes c->slab, get_freelist takes its "
                                      "freelist, STATS cpu_partial_alloc++ ({left} per-CPU partial slabs left)",
    ("___slab_alloc", "cpu_partial_other_node"): "per-CPU partial slab pfn {pfn:#x} is on node {slab_node}, not "
                                                 "node {node}: __put_partials sends it to its node's list",
    ("___slab_alloc", "new_objects"): lambda v: (
        "new_objects: get_partial for " + _node(v)
        + (" with GFP_NOWAIT | __GFP_THISNODE (this node only, first)" if v["thisnode"] else "")),
    ("___slab_alloc", "from_partial"): "got slab pfn {pfn:#x} from node {node}'s partial list: freeze_slab takes "
                                       "its freelist ({obj:#x} first), it becomes c->slab",
    ("___slab_alloc", "new_slab"): _new_slab,
    ("___slab_alloc", "thisnode_failed"): "no slab on node {node} with __GFP_THISNODE: try again with the "
                                          "caller's flags (other nodes allowed)",
    ("___slab_alloc", "oom"): "new_slab failed: slab_out_of_memory, returns NULL",
    ("___slab_alloc", "load_freelist"): "load_freelist: returns {obj:#x}; c->freelist = get_freepointer() = "
                                        "{next_ptr}, tid {tid}",
    ("___slab_alloc", "debug_partial"): "a debug cache: get_partial_node took one object, {obj:#x}, off node partial "
                                        "slab pfn {pfn:#x} (alloc_single_from_partial, alloc_debug_processing; inuse "
                                        "{inuse} of {objects}); no cpu slab, set_track(TRACK_ALLOC), returns it",
    ("___slab_alloc", "debug_new_slab"): "a debug cache: new_slab -> slab pfn {pfn:#x} on node {node}; "
                                         "alloc_single_from_new_slab takes one object, {obj:#x}, and puts the slab on "
                                         "the node's partial list; no cpu slab, set_track(TRACK_ALLOC), returns it",
    ("free_to_partial_list", "freed"): lambda v: (
        "a debug cache, n->list_lock held: free_debug_processing passed, {nr} freed to slab pfn {pfn:#x}, inuse {inuse}"
        .format_map(v) + ("; empty with nr_partial {nr_partial} >= min_partial {min_partial}: freed (STATS free_slab)"
                          .format_map(v) if v["discard"] else "")),
    ("free_to_partial_list", "refused"): "a debug cache: free_debug_processing failed (see dmesg): the object is not "
                                         "freed",
    ("get_partial", "thisnode"): "__GFP_THISNODE: no other node may serve node {node}'s request",
    ("get_partial_node", "empty"): "node {node}'s partial list is empty (nr_partial 0)",
    ("get_partial_node", "take"): "node {node}, n->list_lock: the first partial slab, pfn {pfn:#x} ({free} of "
                                  "{objects} free), is taken off the list (remove_partial) for the CPU: STATS "
                                  "alloc_from_partial++",
    ("get_partial_node", "to_cpu_partial"): "the next, slab pfn {pfn:#x} ({free} free), goes to this CPU's partial "
                                            "list (put_cpu_partial without drain), STATS cpu_partial_node++; "
                                            "{moved} moved, the loop stops past cpu_partial_slabs/2 = {limit}/2",
    ("get_any_partial", "ratio"): "remote_node_defrag_ratio {ratio}: get_cycles() % 1024 = {cycles} is above it "
                                  "(or the ratio is 0): no other node is searched",
    ("get_any_partial", "try"): _any_try,
    ("get_any_partial", "skip"): "a zone of node {node} in the zonelist: nr_partial {nr_partial} <= min_partial "
                                 "{min_partial}: left alone",
    ("allocate_slab", "oo"): _allocate_oo,
    ("allocate_slab", "fallback"): _allocate_fallback,
    ("allocate_slab", "failed"): "neither order {order} (oo) nor order {min_order} (min) pages on "
                                 "node {node}: no slab",
    ("kfree", "null"): "kfree({obj:#x}) on CPU {cpu}: NULL or ZERO_SIZE_PTR, nothing to do",
    ("kfree", "slab"): "kfree({obj:#x}) on CPU {cpu}: virt_to_slab -> slab pfn {pfn:#x} (node {node}) of {cache} "
                       "-> slab_free",
    ("kfree", "large"): "kfree({obj:#x}) on CPU {cpu}: not a slab page -> free_large_kmalloc gives back its pages",
    ("do_slab_free", "fastpath"): _free_entry,
    ("do_slab_free", "slowpath"): _free_entry,
    ("__slab_free", "frozen"): _slab_free("frozen"),
    ("__slab_free", "to_cpu_partial"): _slab_free("to_cpu_partial"),
    ("__slab_free", "stays"): _slab_free("stays"),
    ("__slab_free", "on_cpu_partial"): _slab_free("on_cpu_partial"),
    ("__slab_free", "discard"): _slab_free("discard"),
    ("__slab_free", "add_partial"): _slab_free("add_partial"),
    ("__slab_free", "keep_partial"): _slab_free("keep_partial"),
    ("put_cpu_partial", "put"): _put_cpu_partial,
    ("put_cpu_partial", "drain"): _put_cpu_partial,
    ("__put_partials", "to_node"): "slab pfn {pfn:#x} ({inuse} of {objects} in use) to the tail of node {node}'s "
                                   "partial list, STATS free_add_partial++",
    ("__put_partials", "discard"): "slab pfn {pfn:#x} is empty and node {node} has nr_partial {nr_partial} >= "
                                   "min_partial {min_partial}: discarded after the loop (STATS deactivate_empty++, "
                                   "free_slab++)",
    ("deactivate_slab", "empty"): _deactivate("empty"),
    ("deactivate_slab", "to_head"): _deactivate("to_head"),
    ("deactivate_slab", "to_tail"): _deactivate("to_tail"),
    ("deactivate_slab", "full"): _deactivate("full"),
    ("free_slab", "now"): "slab pfn {pfn:#x}: __ClearPageSlab, __free_pages(order {order}) to the buddy allocator",
    ("free_slab", "rcu"): "slab pfn {pfn:#x}: SLAB_TYPESAFE_BY_RCU -> call_rcu(rcu_free_slab): the pages go back "
                          "after a grace period",
    ("flush_cpu_slab", "flush"): _flush,
    ("__kmem_cache_shrink", "entry"): _shrink_entry,
    ("__kmem_cache_do_shrink", "node"): _shrink_node,
    ("kmem_cache_alloc_bulk_noprof", "entry"): lambda v: (
        "kmem_cache_alloc_bulk({cache}, {gfp}, {size}) on CPU {cpu}: irqs off, c->freelist ".format_map(v)
        + (f"{v['freelist']:#x}" if v["freelist"] else "NULL")),
    ("__kmem_cache_alloc_bulk", "slowpath"): "p[{i}] of {size}: c->freelist is NULL ({fast} taken so far "
                                             "without a lock) -> ___slab_alloc",
    ("__kmem_cache_alloc_bulk", "failed"): "p[{i}] of {size}: ___slab_alloc failed: the objects taken so far "
                                           "are freed (kmem_cache_free_bulk), returns 0",
    ("__kmem_cache_alloc_bulk", "done"): _bulk_done,
    ("kmem_cache_free_bulk", "entry"): lambda v: (
        f"kmem_cache_free_bulk({v['cache'] or 'NULL (kfree_bulk)'}, {v['size']} objects) on CPU {v['cpu']}: from the "
        "end of the array, one detached freelist per slab"),
    ("build_detached_freelist", "chain"): "{cnt} objects of slab pfn {pfn:#x} chained from {obj:#x} (lookahead "
                                          "{lookahead} of 3 misses left); {left} objects still to free",
}
