# ruff: noqa: RUF001  (the Chinese templates use full-width punctuation on purpose)
"""The Chinese templates of SLUB's narration (mm/slub.c, 6.12): (kernel function, step key) -> template.

The same keys as :mod:`kslab.report.narrate_slub_en`; kernel identifiers are never translated.
"""

from __future__ import annotations

from .narrate_types import Template, Values

__all__ = ["SLUB_ZH"]


def _node(v: Values) -> str:
    return "任意节点 (NUMA_NO_NODE)" if v["node"] < 0 else f"节点 {v['node']}"


def _entry(v: Values) -> str:
    s = "在 CPU {cpu} 上 slab_alloc_node({cache}, {gfp})，目标 ".format_map(v) + _node(v) + "："
    if not v["pfn"]:
        return s + "c->slab 为 NULL (没有 cpu slab)，c->freelist 为 NULL，tid {tid}".format_map(v)
    if not v["freelist"]:
        return s + "cpu slab pfn {pfn:#x}，c->freelist 为 NULL (它的对象已全部分出)，tid {tid}".format_map(v)
    return s + "cpu slab pfn {pfn:#x}，c->freelist {freelist:#x}，tid {tid}".format_map(v)


def _slow_reason(what: str) -> Template:
    def t(v: Values) -> str:
        return what.format_map(v) + " -> __slab_alloc (关中断) -> ___slab_alloc，STATS alloc_slowpath++"
    return t


def _kmalloc(v: Values) -> str:
    call = "kmalloc({size}, {gfp})" if v["node"] < 0 else "kmalloc_node({size}, {gfp}, {node})"
    return ("在 CPU {cpu} 上 " + call + "：size <= KMALLOC_MAX_CACHE_SIZE (8192)：kmalloc_slab -> {cache} "
            "(对象 {stride} 字节)").format_map(v)


def _free_entry(v: Values) -> str:
    where = "本 CPU 的 cpu slab 是 pfn {cpu_pfn:#x}".format_map(v) if v["cpu_pfn"] else "本 CPU 没有 cpu slab"
    if v["pfn"] == v["cpu_pfn"]:
        return ("{obj:#x} ({nr} 个) 在 slab pfn {pfn:#x} 中，" + where + "：走无锁快速路径，对象放到 c->freelist 前面 "
                "(set_freepointer(tail, {freelist_ptr}))，tid {tid} -> next_tid，STATS free_fastpath += {nr}"
                ).format_map(v)
    return ("{obj:#x} ({nr} 个) 在 slab pfn {pfn:#x} 中，但" + where + "：调用 __slab_free，STATS "
            "free_slowpath++").format_map(v)


_SLAB_FREE = {
    "frozen": "slab pfn {pfn:#x} 处于冻结状态 (是某个 CPU 的 cpu slab)：对象只放到 slab->freelist 上，inuse -> "
              "{inuse}；"
              "那个 CPU 下次补充时会拿到它们。STATS free_frozen++",
    "to_cpu_partial": "slab pfn {pfn:#x} 原先是满的 (slab->freelist 为 NULL，不在任何链表上)：现在有 {nr} 个空闲对象，"
                      "put_cpu_partial 把它放到本 CPU 的 partial 链表 (不拿节点锁)，STATS cpu_partial_free++",
    "stays": "slab pfn {pfn:#x} 原本就有空闲对象，仍有 {inuse}/{objects} 个在用：留在原来的链表上，不拿锁",
    "on_cpu_partial": "slab pfn {pfn:#x} 现在已空，但它在某个 CPU 的 partial 链表上 (不在节点 {node} 的链表上)："
                      "留在那里，直到该链表被清空",
    "discard": "持有 n->list_lock；slab pfn {pfn:#x} 现在已空 (inuse 0)，且节点 {node} 的 nr_partial {nr_partial} >= "
               "min_partial {min_partial}：slab_empty -> {removed}discard_slab，STATS free_slab++",
    "add_partial": "持有 n->list_lock；slab pfn {pfn:#x} 原先是满的：没有 per-CPU partial 链表，add_partial 把它放到"
                   "节点 {node} 的 partial 链表尾，STATS free_add_partial++",
    "keep_partial": "持有 n->list_lock；slab pfn {pfn:#x} 现在已空，但节点 {node} 只有 nr_partial {nr_partial} < "
                    "min_partial {min_partial}：它留在节点的 partial 链表上",
}


def _slab_free(key: str) -> Template:
    text = _SLAB_FREE[key]

    def t(v: Values) -> str:
        v["removed"] = "remove_partial (它原在节点链表上，STATS free_remove_partial++)，" if v.get("prior") else ""
        return text.format_map(v)
    return t


_DEACTIVATE = {
    "empty": "inuse 为 0 且节点 {node} 的 nr_partial {nr_partial} >= min_partial {min_partial}：discard_slab，"
             "STATS deactivate_empty++，free_slab++",
    "to_head": "它有空闲对象：add_partial 放到节点 {node} 的 partial 链表头，STATS deactivate_to_head++",
    "to_tail": "它有空闲对象，其中一些是冻结期间由别的 CPU 释放的：add_partial 放到节点 {node} 的 partial 链表尾，"
               "STATS deactivate_remote_frees++，deactivate_to_tail++",
    "full": "没有空闲对象：满 slab 不在任何链表上，STATS deactivate_full++",
}


def _deactivate(key: str) -> Template:
    outcome = _DEACTIVATE[key]

    def t(v: Values) -> str:
        s = ("slab pfn {pfn:#x}：CPU freelist 上的 {returned} 个对象放回 slab->freelist 前面，解除冻结，"
             "inuse {inuse}/{objects}；").format_map(v)
        return s + outcome.format_map(v)
    return t


def _put_cpu_partial(v: Values) -> str:
    if v["drained"]:
        return ("本 CPU 的 partial 链表已有 {drained} 个 slab >= cpu_partial_slabs {limit}：先把它们交还节点 "
                "(__put_partials，STATS cpu_partial_drain++)；slab pfn {pfn:#x} 开始新的链表，slabs = 1").format_map(v)
    return "slab pfn {pfn:#x} 放到本 CPU 的 partial 链表头，slabs {slabs} (cpu_partial_slabs {limit})".format_map(v)


def _flush(v: Values) -> str:
    s = "在 CPU {cpu} 上执行 flush 工作：".format_map(v)
    s += ("cpu slab pfn {pfn:#x} -> flush_slab (deactivate_slab，STATS cpuslab_flush++)".format_map(v) if v["pfn"]
          else "没有 cpu slab")
    if v["partial"]:
        return s + f"；per-CPU partial 链表上的 {v['partial']} 个 slab -> put_partials_cpu"
    return s + "；per-CPU partial 链表为空"


def _shrink_node(v: Values) -> str:
    s = ("节点 {node}：{discarded} 个空 slab 从 partial 链表取下并释放；空闲对象不超过 SHRINK_PROMOTE_MAX (32) 的 "
         "slab 有 {promoted} 个，移到链表头，越满越靠前；nr_partial 现为 {nr_partial}").format_map(v)
    if v["head"]:
        s += "，链表头 " + ", ".join(f"{p:#x}" for p in v["head"])
    return s


def _shrink_entry(v: Values) -> str:
    if not v["cpus"]:
        return "kmem_cache_shrink({cache})：没有 CPU 持有 cpu slab 或 partial slab".format_map(v)
    return ("kmem_cache_shrink({cache})：先 flush_all，对持有 cpu slab 或 partial slab 的 CPU：".format_map(v)
            + ", ".join(str(c) for c in v["cpus"]))


def _bulk_entry(v: Values) -> str:
    fl = f"{v['freelist']:#x}" if v["freelist"] else "NULL"
    return "在 CPU {cpu} 上 kmem_cache_alloc_bulk({cache}, {gfp}, {size})：关中断，c->freelist ".format_map(v) + fl


def _free_bulk_entry(v: Values) -> str:
    name = v["cache"] or "NULL (kfree_bulk)"
    return (f"在 CPU {v['cpu']} 上 kmem_cache_free_bulk({name}, {v['size']} 个对象)：从数组末尾开始，"
            "每个 slab 一条分离的 freelist")


SLUB_ZH: dict[tuple[str, str], Template] = {
    ("__do_kmalloc_node", "cache"): _kmalloc,
    ("__do_kmalloc_node", "large"): "在 CPU {cpu} 上 kmalloc({size})：size > KMALLOC_MAX_CACHE_SIZE ({limit})："
                                    "___kmalloc_large_node 直接从伙伴系统申请 order {order} 的页，不经过 slab",
    ("__do_kmalloc_node", "zero"): "在 CPU {cpu} 上 kmalloc(0)：返回 ZERO_SIZE_PTR (16)，不分配",
    ("slab_alloc_node", "entry"): _entry,
    ("slab_alloc_node", "done"): "返回 {obj:#x}",
    ("slab_alloc_node", "failed"): "返回 NULL：内存不足",
    ("__slab_alloc_node", "fastpath"): "c->freelist {obj:#x} 在所需节点上：走无锁快速路径，"
                                       "this_cpu_cmpxchg_double(freelist, tid) -> freelist = get_freepointer() = "
                                       "{next_ptr}，tid {tid}；STATS alloc_fastpath++",
    ("__slab_alloc_node", "no_cpu_slab"): _slow_reason("没有 cpu slab"),
    ("__slab_alloc_node", "no_freelist"): _slow_reason("c->freelist 为 NULL"),
    ("__slab_alloc_node", "node_mismatch"): _slow_reason("cpu slab 在节点 {slab_node}，不是所需节点"),
    ("___slab_alloc", "no_cpu_slab"): "CPU {cpu} 的 c->slab 为 NULL -> new_slab：先看 per-CPU partial 链表",
    ("___slab_alloc", "node_mismatch"): "cpu slab pfn {pfn:#x} 在节点 {slab_node}，请求的是节点 {node}：STATS "
                                        "alloc_node_mismatch++，c->slab = NULL -> deactivate_slab",
    ("___slab_alloc", "cpu_freelist"): "c->freelist {obj:#x} 又有对象了 (slab 仍属本 CPU) -> load_freelist",
    ("___slab_alloc", "refill"): "c->freelist 为 NULL，但别的 CPU 向 cpu slab pfn {pfn:#x} 的 slab->freelist 释放了 "
                                 "{nr} "
                                 "个对象：get_freelist 全部取走 (slab 保持冻结)，STATS alloc_refill++",
    ("___slab_alloc", "bypass"): "c->freelist 为 NULL，cpu slab pfn {pfn:#x} 也没有空闲对象了 (get_freelist 返回 NULL，"
                                 "slab 解除冻结，满 slab 不在任何链表上)：c->slab = NULL，STATS deactivate_bypass++ -> "
                                 "new_slab",
    ("___slab_alloc", "cpu_partial"): "本 CPU partial 链表头的 slab pfn {pfn:#x} (空闲 {free}/{objects}) 在所需节点上："
                                      "它成为 c->slab，get_freelist 取走它的 freelist，STATS cpu_partial_alloc++ "
                                      "(per-CPU partial 链表还剩 {left} 个 slab)",
    ("___slab_alloc", "cpu_partial_other_node"): "per-CPU partial slab pfn {pfn:#x} 在节点 {slab_node} 而不是节点 "
                                                 "{node}：__put_partials 把它交还所属节点的链表",
    ("___slab_alloc", "new_objects"): lambda v: (
        "new_objects：为" + _node(v) + " 调用 get_partial"
        + (" (先用 GFP_NOWAIT | __GFP_THISNODE，只找本节点)" if v["thisnode"] else "")),
    ("___slab_alloc", "from_partial"): "从节点 {node} 的 partial 链表得到 slab pfn {pfn:#x}：freeze_slab 取走它的 "
                                       "freelist (第一个是 {obj:#x})，它成为 c->slab",
    ("___slab_alloc", "new_slab"): "没有 partial slab：new_slab -> 节点 {node} 上的 slab pfn {pfn:#x}，{objects} 个空闲"
                                   "对象；STATS alloc_slab++，inc_slabs_node，冻结，c->slab = 它",
    ("___slab_alloc", "thisnode_failed"): "带 __GFP_THISNODE 在节点 {node} 上没有得到 slab：用调用者的标志重试 "
                                          "(允许其他节点)",
    ("___slab_alloc", "oom"): "new_slab 失败：slab_out_of_memory，返回 NULL",
    ("___slab_alloc", "load_freelist"): "load_freelist：返回 {obj:#x}；c->freelist = get_freepointer() = {next_ptr}，"
                                        "tid {tid}",
    ("___slab_alloc", "debug_partial"): "调试缓存：get_partial_node 从节点 partial slab pfn {pfn:#x} 取下一个对象 "
                                        "{obj:#x} (alloc_single_from_partial，alloc_debug_processing；在用 {inuse}/"
                                        "{objects})；没有 cpu slab，set_track(TRACK_ALLOC)，返回它",
    ("___slab_alloc", "debug_new_slab"): "调试缓存：new_slab -> 节点 {node} 上的 slab pfn {pfn:#x}；"
                                         "alloc_single_from_new_slab 只取一个对象 {obj:#x}，并把 slab 放到节点 partial "
                                         "链表；没有 cpu slab，set_track(TRACK_ALLOC)，返回它",
    ("free_to_partial_list", "freed"): lambda v: (
        "调试缓存，持有 n->list_lock：free_debug_processing 通过，{nr} 个对象还给 slab pfn {pfn:#x}，inuse {inuse}"
        .format_map(v) + ("；slab 已空且 nr_partial {nr_partial} >= min_partial {min_partial}：释放 (STATS free_slab)"
                          .format_map(v) if v["discard"] else "")),
    ("free_to_partial_list", "refused"): "调试缓存：free_debug_processing 失败 (见 dmesg)：对象没有被释放",
    ("get_partial", "thisnode"): "__GFP_THISNODE：其他节点不能满足节点 {node} 的请求",
    ("get_partial_node", "empty"): "节点 {node} 的 partial 链表为空 (nr_partial 0)",
    ("get_partial_node", "take"): "节点 {node}，持有 n->list_lock：第一个 partial slab pfn {pfn:#x} (空闲 {free}/"
                                  "{objects}) 从链表取下 (remove_partial) 交给 CPU：STATS alloc_from_partial++",
    ("get_partial_node", "to_cpu_partial"): "下一个 slab pfn {pfn:#x} (空闲 {free}) 放到本 CPU 的 partial 链表 "
                                            "(put_cpu_partial，不清空)，STATS cpu_partial_node++；已移动 {moved} 个，"
                                            "超过 cpu_partial_slabs/2 = {limit}/2 时停止",
    ("get_any_partial", "ratio"): "remote_node_defrag_ratio {ratio}：get_cycles() % 1024 = {cycles} 大于它 "
                                  "(或比例为 0)："
                                  "不搜索其他节点",
    ("get_any_partial", "try"): "zonelist 中节点 {node} 的一个 zone：nr_partial {nr_partial} > min_partial "
                                "{min_partial}：可以让出一个 slab -> "
                                "get_partial_node",
    ("get_any_partial", "skip"): "zonelist 中节点 {node} 的一个 zone：nr_partial {nr_partial} <= min_partial "
                                 "{min_partial}：跳过",
    ("allocate_slab", "oo"): "alloc_slab_page(order {order}，即 oo 的 order，__GFP_NOWARN | __GFP_NORETRY，去掉 "
                             "__GFP_NOFAIL) -> 节点 {node} 上的 pfn {pfn:#x}，地址 {addr:#x}：{objects} 个 {size} 字节"
                             "的对象，空闲指针按地址顺序串起 (没有 CONFIG_SLAB_FREELIST_RANDOM)",
    ("allocate_slab", "fallback"): "order {oo_order} (oo，{oo_objects} 个对象) 失败：退回 s->min 的 order {order} -> "
                                   "节点 {node} 上的 pfn {pfn:#x}，{objects} 个对象，STATS order_fallback++",
    ("allocate_slab", "failed"): "节点 {node} 上 order {order} (oo) 和 order {min_order} (min) 的页都没有：没有 slab",
    ("kfree", "null"): "在 CPU {cpu} 上 kfree({obj:#x})：NULL 或 ZERO_SIZE_PTR，什么也不做",
    ("kfree", "slab"): "在 CPU {cpu} 上 kfree({obj:#x})：virt_to_slab -> {cache} 的 slab pfn {pfn:#x} (节点 {node}) -> "
                       "slab_free",
    ("kfree", "large"): "在 CPU {cpu} 上 kfree({obj:#x})：不是 slab 页 -> free_large_kmalloc 归还它的页",
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
    ("__put_partials", "to_node"): "slab pfn {pfn:#x} (在用 {inuse}/{objects}) 放到节点 {node} 的 partial 链表尾，"
                                   "STATS free_add_partial++",
    ("__put_partials", "discard"): "slab pfn {pfn:#x} 已空且节点 {node} 的 nr_partial {nr_partial} >= min_partial "
                                   "{min_partial}：循环结束后丢弃 (STATS deactivate_empty++，free_slab++)",
    ("deactivate_slab", "empty"): _deactivate("empty"),
    ("deactivate_slab", "to_head"): _deactivate("to_head"),
    ("deactivate_slab", "to_tail"): _deactivate("to_tail"),
    ("deactivate_slab", "full"): _deactivate("full"),
    ("free_slab", "now"): "slab pfn {pfn:#x}：__ClearPageSlab，__free_pages(order {order}) 还给伙伴系统",
    ("free_slab", "rcu"): "slab pfn {pfn:#x}：SLAB_TYPESAFE_BY_RCU -> call_rcu(rcu_free_slab)：宽限期之后才归还页",
    ("flush_cpu_slab", "flush"): _flush,
    ("__kmem_cache_shrink", "entry"): _shrink_entry,
    ("__kmem_cache_do_shrink", "node"): _shrink_node,
    ("kmem_cache_alloc_bulk_noprof", "entry"): _bulk_entry,
    ("__kmem_cache_alloc_bulk", "slowpath"): "p[{i}] (共 {size} 个)：c->freelist 为 NULL (此前无锁取得 {fast} 个) -> "
                                             "___slab_alloc",
    ("__kmem_cache_alloc_bulk", "failed"): "p[{i}] (共 {size} 个)：___slab_alloc 失败：已取得的对象全部释放 "
                                           "(kmem_cache_free_bulk)，返回 0",
    ("__kmem_cache_alloc_bulk", "done"): "{size} 个对象：{fast} 个直接取自 c->freelist (每个 STATS alloc_fastpath++)，"
                                         "其余来自 ___slab_alloc；最后 tid 才一次更新为 {tid}",
    ("kmem_cache_free_bulk", "entry"): _free_bulk_entry,
    ("build_detached_freelist", "chain"): "slab pfn {pfn:#x} 的 {cnt} 个对象从 {obj:#x} 串起 (lookahead 还剩 "
                                          "{lookahead}/3 "
                                          "次未命中)；还有 {left} 个对象待释放",
}
