"""The English templates of :mod:`kslab.report.narrate`: (kernel function, step key) -> template.

A template is a ``str.format_map`` text over the step's values (and the derived fields of
``narrate._derive``: ``gfp``, ``pages``, ``free``, ...), or, for the steps whose wording depends on a
value, a form of :mod:`kslab.report.narrate_forms` worded with this language's phrases (``_PHRASES``).
Kernel identifiers are never translated.  See narrate.py's docstring for adding a step key.
"""

from __future__ import annotations

from .narrate_forms import worded_all
from .narrate_types import Template, plural

__all__ = ["EN"]

# the phrases of the steps whose wording depends on a value (narrate_forms): form -> phrase key -> text
_PHRASES: dict[str, dict[str, str]] = {
    "kfree_entry": {
        "null": "kfree({obj:#x}) on CPU {cpu} (node {node}): trace_kfree fires first, even for NULL",
        "object": ("kfree({obj:#x}) on CPU {cpu} (node {node}): trace_kfree fires first; {obj:#x} > ZERO_SIZE_PTR "
                   "(16), not NULL -> local_irq_save, virt_to_cache"),
    },
    "compound_head": {
        "head": ("virt_to_page({obj:#x}) = pfn {pfn:#x}; bit 0 of page->compound_head is clear: not a tail page, so "
                 "the page is its own head"),
        "compound": " (the head page of an order-{order} compound page)",
        "order0": " (an order-0 page)",
    },
    "push": {
        "alien": "alien array for node {node}: entry[{prev}] = {obj:#x}, avail {prev} -> {avail} (limit {limit})",
        "local": ("ac->entry[{prev}] = {obj:#x}, avail {prev} -> {avail} (limit {limit}): the newest entry, the first "
                  "one the next allocation on this CPU gets (LIFO, still cache-hot)"),
    },
    "drain": {
        "lock": "node {node}'s list_lock held: ",
        "to_shared": "transfer_objects moved the newest {to_shared} into node {node}'s shared array; ",
        "no_shared": "transfer_objects moved nothing (no shared array on node {node}, or it is full); ",
        "nothing_left": "nothing is left for free_block (called with 0 objects); ac->avail = 0",
        "to_slabs": "free_block returns the remaining {to_slabs} to their slabs; ac->avail = 0",
    },
    "flush_shared": {
        "flush": ("shared array has room {room} ({before} of {limit} used): move min(batchcount, room) = {nr} oldest "
                  "objects ac->entry[0..{last}] onto it (shared avail {before} -> {shared}); nothing goes back to the "
                  "slabs"),
    },
    "free_block_check": {
        "over": ("free_objects {free_objects} > free_limit {free_limit}: too many free objects on node {node} -> give "
                 "back empty slabs, coldest first (tail of slabs_free), while there are any"),
        "under": "free_objects {free_objects} <= free_limit {free_limit}: no slab is given back",
    },
    "trim": {
        "move": ("free_objects {free_objects} > free_limit {free_limit}: the coldest empty slab (tail of slabs_free) "
                 "pfn {pfn:#x} moves to the destroy list"),
        "move_num": ("free_objects {free_objects} > free_limit {free_limit}: the coldest empty slab (tail of "
                     "slabs_free) pfn {pfn:#x} moves to the head of the destroy list; free_objects -= num {num} -> "
                     "{after}, free_slabs--, total_slabs--"),
    },
    "slab_destroy": {
        "rcu": ("slab pfn {pfn:#x}: SLAB_TYPESAFE_BY_RCU -> call_rcu(kmem_rcu_free): the pages go back after an RCU "
                "grace period"),
        "now": "slab pfn {pfn:#x}: not SLAB_TYPESAFE_BY_RCU -> kmem_freepages now",
    },
    "refill": {
        "batch": "batchcount {batch}",
        "untouched": " (ac->touched 0, not used since the last reap: take at most BATCHREFILL_LIMIT = 16)",
        "free_objects": "; node free_objects {free_objects}",
        "shared": ", shared avail {shared}",
        "no_shared": ", no shared array",
        "empty": ": nothing to take on this node",
    },
    "alloc_block": {
        "src_partial": "head of slabs_partial",
        "src_free": "head of slabs_free",
        "src_new": "the new slab",
        "take": ("slab pfn {pfn:#x} ({src_text}), active {active} of {num}: take min(batch {batch}, free {free}) = "
                 "{take} objects in freelist order"),
    },
    "fixup_full": {
        "full": "slab pfn {pfn:#x} active {active} of {num}: head of slabs_full",
        "objfreelist": ("; OBJFREELIST: page->freelist = NULL (its index array sat in an object that is now handed "
                        "out)"),
    },
    "grow_end": {
        "lock": "node list_lock: total_slabs -> {total_slabs}; ",
        "to_free": "active 0: slab pfn {pfn:#x} goes to the tail of slabs_free (free_slabs++)",
        "placed": "active {active} of {num}: fixup_slab_list places slab pfn {pfn:#x}",
        "free_objects": "; free_objects += {free} -> {free_objects}",
    },
    "grow": {
        "slab": ("new slab pfn {pfn:#x} (order {order}, {pages_en}) on node {node} at {addr:#x}: colour offset "
                 "{colour}, {num} objects, freelist {placement}; "),
        "shuffled": "shuffle_freelist chose the freelist order",
        "in_order": "cache_init_objs sets freelist[i] = i",
    },
    "shuffle_precomputed": {
        "seq": ("CONFIG_SLAB_FREELIST_RANDOM: get_random_int() = {rand}; the cache's random_seq is read from position "
                "{rand} % {num} = {start}, wrapping at the end"),
        "objfreelist": ("; OBJFREELIST_SLAB: entry {start} (object {objfreelist}) holds the freelist and is handed "
                        "out last"),
        "head": "; freelist[0..7] = {head}",
    },
    "shuffle_prandom": {
        "prng": ("CONFIG_SLAB_FREELIST_RANDOM: no random_seq yet (kmem_cache_init_late's enable_cpucache makes it): "
                 "Fisher-Yates shuffle with prandom_u32_state seeded by get_random_int() = {rand}"),
        "objfreelist": "; OBJFREELIST_SLAB: the last object ({objfreelist}) holds the freelist",
        "head": "; freelist[0..7] = {head}",
    },
}
_W = worded_all(_PHRASES)

EN: dict[tuple[str, str], Template] = {
    ("kfree", "entry"): _W["kfree_entry"],
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
    ("compound_head", "head"): _W["compound_head"],
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
    ("__drain_alien_cache", "alien_drain"): _W["drain"],
    ("__free_one", "push"): _W["push"],
    ("__free_one", "hardened_drop"): "CONFIG_SLAB_FREELIST_HARDENED: ac->entry[avail-1] is already {obj:#x}, an "
                                     "immediate double free -> WARN_ON_ONCE, and this free is dropped",
    ("cache_flusharray", "flush_shared"): _W["flush_shared"],
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
    ("free_block", "free_block"): _W["free_block_check"],
    ("free_block", "trim"): _W["trim"],
    ("slab_put_obj", "put"): lambda v: ("obj_to_index: ({obj:#x} - s_mem {s_mem:#x}) / size {size} = {objnr}; "
                                        "page->active {before} -> {active}; set_free_obj: freelist[{active}] = "
                                        "{objnr}").format_map({**v, "before": v["active"] + 1}),
    ("slab_put_obj", "objfreelist"): "page->freelist was NULL (an OBJFREELIST slab that was full): the freed object "
                                     "itself becomes the index array, page->freelist = {freelist:#x}",
    ("slabs_destroy", "destroy"): lambda v: ("{n_slabs} on the detached list, destroyed in list order (the last "
                                             "trimmed first): pfn {pfn_list}").format_map(
                                                 {**v, "n_slabs": plural(v["nr"], "slab")}),
    ("slab_destroy", "slab_destroy"): _W["slab_destroy"],
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
    ("cache_alloc_refill", "refill"): _W["refill"],
    ("cache_alloc_refill", "refill_shared"): "transfer_objects: {nr} objects from the shared array (its avail now "
                                             "{shared}); shared->touched = 1",
    ("cache_alloc_refill", "refill_slabs"): "{nr} objects taken from the node's slabs; n->free_objects -= {nr} -> "
                                            "{free_objects}",
    ("cache_alloc_refill", "raced"): "the trace shows another CPU growing this cache at the same time: under "
                                     "the lock this CPU found the node empty (its {free_objects} free objects "
                                     "came from that CPU's new slab afterwards)",
    ("cache_alloc_refill", "must_grow"): "the array is still empty: cache_grow_begin(gfp_exact_node(flags), node "
                                         "{node}) for a new slab",
    ("alloc_block", "take"): _W["alloc_block"],
    ("fixup_slab_list", "full"): _W["fixup_full"],
    ("fixup_slab_list", "partial"): "slab pfn {pfn:#x} active {active} of {num}: head of slabs_partial",
    ("cache_grow_begin", "grow"): _W["grow"],
    ("cache_grow_begin", "grow_fail"): "kmem_getpages(order {order}, node {node}) failed: no new slab",
    ("shuffle_freelist", "precomputed"): _W["shuffle_precomputed"],
    ("shuffle_freelist", "prandom"): _W["shuffle_prandom"],
    ("shuffle_freelist", "too_few"): "CONFIG_SLAB_FREELIST_RANDOM: {num} object per slab, nothing to shuffle; "
                                     "cache_init_objs sets freelist[0] = 0",
    ("cache_random_seq_create", "random_seq"): "CONFIG_SLAB_FREELIST_RANDOM: kcalloc({count}, sizeof(unsigned int)) "
                                               "-> {addr:#x}; prandom_seed_state(get_random_long() = {seed:#x}); "
                                               "freelist_randomize: Fisher-Yates over {count} entries with "
                                               "prandom_u32_state; random_seq[0..7] = {head}",
    ("kmem_getpages", "pages"): "__alloc_pages_node(node {node}, order {order}) -> pfn {pfn:#x}; {counter} of node "
                                "{node} += {bytes}; __SetPageSlab",
    ("cache_grow_end", "grow_end"): _W["grow_end"],
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
