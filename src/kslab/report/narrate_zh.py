# ruff: noqa: RUF001  (the Chinese templates use full-width punctuation on purpose)
"""The Chinese templates of :mod:`kslab.report.narrate`: (kernel function, step key) -> template.

A template is a ``str.format_map`` text over the step's values (and the derived fields of
``narrate._derive``: ``gfp``, ``pages``, ``free``, ...), or, for the steps whose wording depends on a
value, a form of :mod:`kslab.report.narrate_forms` worded with this language's phrases (``_PHRASES``).
Kernel identifiers are never translated.  See narrate.py's docstring for adding a step key.
"""

from __future__ import annotations

from .narrate_forms import worded_all
from .narrate_types import Template

__all__ = ["ZH"]

# the phrases of the steps whose wording depends on a value (narrate_forms): form -> phrase key -> text
_PHRASES: dict[str, dict[str, str]] = {
    "kfree_entry": {
        "null": "在 CPU {cpu} (节点 {node}) 上 kfree({obj:#x})：先触发 trace_kfree，NULL 也照样记录",
        "object": ("在 CPU {cpu} (节点 {node}) 上 kfree({obj:#x})：先触发 trace_kfree；{obj:#x} > ZERO_SIZE_PTR "
                   "(16)，不是空指针 -> local_irq_save 关中断，调用 virt_to_cache"),
    },
    "compound_head": {
        "head": "virt_to_page({obj:#x}) = pfn {pfn:#x}；page->compound_head 的 bit 0 为 0：不是尾页，头页就是它自己",
        "compound": " (它是 order {order} 组合页的头页)",
        "order0": " (order 0 的普通页)",
    },
    "push": {
        "alien": "节点 {node} 的 alien 数组：entry[{prev}] = {obj:#x}，avail {prev} -> {avail} (limit {limit})",
        "local": ("ac->entry[{prev}] = {obj:#x}，avail {prev} -> {avail} (limit {limit})：它是最新放入的条目，本 CPU "
                  "下一次分配最先拿到它 (后进先出，缓存仍然是热的)"),
    },
    "drain": {
        "lock": "持有节点 {node} 的 list_lock：",
        "to_shared": "transfer_objects 把最新的 {to_shared} 个对象移入节点 {node} 的 shared 数组；",
        "no_shared": "transfer_objects 没有移动对象 (节点 {node} 没有 shared 数组或已满)；",
        "nothing_left": "没有剩下的对象交给 free_block (以 0 个对象调用)；ac->avail = 0",
        "to_slabs": "free_block 把剩下的 {to_slabs} 个还给所属 slab；ac->avail = 0",
    },
    "flush_shared": {
        "flush": ("shared 数组还有 {room} 个空位 (已用 {before}/{limit})：移动 min(batchcount, 空位) = {nr} "
                  "个最旧的对象 ac->entry[0..{last}] 过去 (shared avail {before} -> {shared})；这次没有对象还给 slab"),
    },
    "free_block_check": {
        "over": ("free_objects {free_objects} > free_limit {free_limit}：节点 {node} 上空闲对象过多 -> 只要还有空 "
                 "slab，就从最冷的 (slabs_free 尾部) 开始归还"),
        "under": "free_objects {free_objects} <= free_limit {free_limit}：不归还任何 slab",
    },
    "trim": {
        "move": ("free_objects {free_objects} > free_limit {free_limit}：最冷的空 slab (slabs_free 尾部) pfn {pfn:#x} "
                 "移到待销毁链表"),
        "move_num": ("free_objects {free_objects} > free_limit {free_limit}：最冷的空 slab (slabs_free 尾部) pfn "
                     "{pfn:#x} 移到待销毁链表头；free_objects -= num {num} -> {after}，free_slabs--，total_slabs--"),
    },
    "slab_destroy": {
        "rcu": "slab pfn {pfn:#x}：SLAB_TYPESAFE_BY_RCU -> call_rcu(kmem_rcu_free)：RCU 宽限期结束后才把页还回去",
        "now": "slab pfn {pfn:#x}：缓存没有 SLAB_TYPESAFE_BY_RCU 标志 -> 立即 kmem_freepages",
    },
    "refill": {
        "batch": "batchcount {batch}",
        "untouched": " (ac->touched 为 0，自上次回收以来未被使用：最多取 BATCHREFILL_LIMIT = 16 个)",
        "free_objects": "；节点 free_objects {free_objects}",
        "shared": "，shared avail {shared}",
        "no_shared": "，没有 shared 数组",
        "empty": "：本节点没有可取的对象",
    },
    "alloc_block": {
        "src_partial": "slabs_partial 链表头",
        "src_free": "slabs_free 链表头",
        "src_new": "新建的 slab",
        "take": ("slab pfn {pfn:#x} ({src_text})，active {active}/{num}：按 freelist 顺序取 min(batch {batch}, 空闲 "
                 "{free}) = {take} 个对象"),
    },
    "fixup_full": {
        "full": "slab pfn {pfn:#x} active {active}/{num}：放到 slabs_full 链表头",
        "objfreelist": "；OBJFREELIST：page->freelist = NULL (索引数组所在的对象已经分配出去)",
    },
    "grow_end": {
        "lock": "持有节点 list_lock：total_slabs -> {total_slabs}；",
        "to_free": "active 为 0：slab pfn {pfn:#x} 放到 slabs_free 链表尾 (free_slabs++)",
        "placed": "active {active}/{num}：由 fixup_slab_list 放置 slab pfn {pfn:#x}",
        "free_objects": "；free_objects += {free} -> {free_objects}",
    },
    "grow": {
        "slab": ("新 slab pfn {pfn:#x} (order {order}，{pages} 页) 位于节点 {node}，地址 {addr:#x}：着色偏移 "
                 "{colour}，{num} 个对象，freelist 放置方式 {placement}；"),
        "shuffled": "freelist 顺序由 shuffle_freelist 决定",
        "in_order": "cache_init_objs 令 freelist[i] = i",
    },
    "shuffle_precomputed": {
        "seq": ("CONFIG_SLAB_FREELIST_RANDOM：get_random_int() = {rand}；从位置 {rand} % {num} = {start} 开始读取该 "
                "cache 的 random_seq，读到末尾后回到开头"),
        "objfreelist": "；OBJFREELIST_SLAB：第 {start} 项 (对象 {objfreelist}) 存放 freelist，最后才分配出去",
        "head": "；freelist[0..7] = {head}",
    },
    "shuffle_prandom": {
        "prng": ("CONFIG_SLAB_FREELIST_RANDOM：还没有 random_seq (由 kmem_cache_init_late 的 enable_cpucache "
                 "创建)：用以 get_random_int() = {rand} 为种子的 prandom_u32_state 做 Fisher-Yates 洗牌"),
        "objfreelist": "；OBJFREELIST_SLAB：最后一个对象 ({objfreelist}) 存放 freelist",
        "head": "；freelist[0..7] = {head}",
    },
}
_W = worded_all(_PHRASES)

ZH: dict[tuple[str, str], Template] = {
    ("kfree", "entry"): _W["kfree_entry"],
    ("kfree", "null"): "objp {obj:#x} <= ZERO_SIZE_PTR (16)：是 NULL 或 ZERO_SIZE_PTR，立即返回 (kfree 事件已经记录)",
    ("kfree", "enter"): "对象属于 {cache}；debug_check_no_locks_freed (LOCKDEP) 与 debug_check_no_obj_freed "
                        "(DEBUG_OBJECTS_FREE) 在这里不起作用 -> __cache_free，之后 local_irq_restore 开中断",
    ("virt_to_head_page", "free_page"): "virt_to_page({obj:#x}) = pfn {pfn:#x}：该页没有被任何人分配 (空闲内存)，"
                                        "flags 中没有 PG_slab",
    ("compound_head", "tail"): "virt_to_page({obj:#x}) = pfn {pfn:#x}；page->compound_head = {word:#x}，bit 0 为 1："
                               "这是组合页的尾页 (TAIL)，该字保存的是头页 struct page 的地址 + 1 -> 头页 pfn "
                               "{head_pfn:#x} (组合页 order {order})",
    ("compound_head", "head"): _W["compound_head"],
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
    ("__drain_alien_cache", "alien_drain"): _W["drain"],
    ("__free_one", "push"): _W["push"],
    ("__free_one", "hardened_drop"): "CONFIG_SLAB_FREELIST_HARDENED：ac->entry[avail-1] 已经是 {obj:#x}，这是紧接着"
                                     "的重复释放 -> WARN_ON_ONCE，并丢弃这次释放",
    ("cache_flusharray", "flush_shared"): _W["flush_shared"],
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
    ("free_block", "free_block"): _W["free_block_check"],
    ("free_block", "trim"): _W["trim"],
    ("slab_put_obj", "put"): lambda v: ("obj_to_index：({obj:#x} - s_mem {s_mem:#x}) / size {size} = {objnr}；"
                                        "page->active {before} -> {active}；set_free_obj：freelist[{active}] = "
                                        "{objnr}").format_map({**v, "before": v["active"] + 1}),
    ("slab_put_obj", "objfreelist"): "page->freelist 为 NULL (原本全满的 OBJFREELIST slab)：被释放的对象本身成为"
                                     "索引数组，page->freelist = {freelist:#x}",
    ("slabs_destroy", "destroy"): "待销毁链表上有 {nr} 个 slab，按链表顺序销毁 (最后裁剪的最先销毁)：pfn {pfn_list}",
    ("slab_destroy", "slab_destroy"): _W["slab_destroy"],
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
    ("cache_alloc_refill", "refill"): _W["refill"],
    ("cache_alloc_refill", "refill_shared"): "transfer_objects：从 shared 数组取得 {nr} 个对象 (shared 剩余 "
                                             "{shared})；shared->touched = 1",
    ("cache_alloc_refill", "refill_slabs"): "从节点的 slab 取得 {nr} 个对象；n->free_objects -= {nr} -> "
                                            "{free_objects}",
    ("cache_alloc_refill", "raced"): "trace 显示另一个 CPU 同时在为该 cache 增长 slab：本 CPU 持锁检查时节点为空"
                                     "（现有的 {free_objects} 个空闲对象来自那个 CPU 随后加入的新 slab）",
    ("cache_alloc_refill", "must_grow"): "数组仍为空：cache_grow_begin(gfp_exact_node(flags), 节点 {node}) 申请新 slab",
    ("alloc_block", "take"): _W["alloc_block"],
    ("fixup_slab_list", "full"): _W["fixup_full"],
    ("fixup_slab_list", "partial"): "slab pfn {pfn:#x} active {active}/{num}：放到 slabs_partial 链表头",
    ("cache_grow_begin", "grow"): _W["grow"],
    ("cache_grow_begin", "grow_fail"): "kmem_getpages(order {order}, 节点 {node}) 失败：没有新 slab",
    ("shuffle_freelist", "precomputed"): _W["shuffle_precomputed"],
    ("shuffle_freelist", "prandom"): _W["shuffle_prandom"],
    ("shuffle_freelist", "too_few"): "CONFIG_SLAB_FREELIST_RANDOM：每个 slab 只有 {num} 个对象，无需打乱；"
                                     "cache_init_objs 令 freelist[0] = 0",
    ("cache_random_seq_create", "random_seq"): "CONFIG_SLAB_FREELIST_RANDOM：kcalloc({count}, sizeof(unsigned int)) "
                                               "-> {addr:#x}；prandom_seed_state(get_random_long() = {seed:#x})；"
                                               "freelist_randomize：用 prandom_u32_state 对 {count} 项做 "
                                               "Fisher-Yates 洗牌；random_seq[0..7] = {head}",
    ("kmem_getpages", "pages"): "__alloc_pages_node(节点 {node}, order {order}) -> pfn {pfn:#x}；节点 {node} 的 "
                                "{counter} += {bytes}；__SetPageSlab",
    ("cache_grow_end", "grow_end"): _W["grow_end"],
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
