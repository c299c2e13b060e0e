# ruff: noqa: RUF001  (the Chinese narration uses full-width punctuation on purpose)
"""The header of an explained SLUB operation (``kslab explain --allocator slub``), in English or Chinese: the
machine, what was set up, the cache's geometry and the state that decides the path (the CPU's cpu slab,
freelist and partial list, the nodes' partial lists); then :func:`kslab.report.narrate.narrate` with SLUB's
call graph and templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .narrate import SLUB, generic, header_lines, narrate
from .narrate_types import plural

if TYPE_CHECKING:
    from ..scenarios import Explanation

#: what a set-up kfree freed (the ``what`` of a scenario's setup record)
FREED = {
    "en": {"first": "the oldest", "first_slab": "in the first slab", "cpu_slab": "in the cpu slab",
           "one_per_slab": "one object of each slab but the last", "rest_of_first": "the rest of the first slab",
           "all_of_first": "every object of the first slab", "half_of_second": "half the second slab"},
    "zh": {"first": "最先分配的", "first_slab": "第一个 slab 中的", "cpu_slab": "cpu slab 中的",
           "one_per_slab": "除最后一个外每个 slab 的一个对象", "rest_of_first": "第一个 slab 余下的",
           "all_of_first": "第一个 slab 的全部对象", "half_of_second": "第二个 slab 的一半"},
}


def _setup_en(s: dict[str, Any]) -> str:
    do = s["do"]
    if do == "kmalloc":
        where = f"CPU {s['cpu']}" + (f" (node {s['node']})" if "node" in s else "")
        text = f"kmalloc({s['size']}) x {s['count']} on {where}"
        if s.get("what") == "one_slab":
            text += " (one slab's worth)"
        elif s.get("what") == "two_slabs":
            text += " (two slabs' worth)"
        elif s.get("what") == "slabs":
            text += f" ({plural(s['slabs'], 'slab')}' worth)"
        return text
    if do == "kfree":
        what = FREED["en"].get(s.get("what", ""), "")
        ptr = f" ({s['ptr']:#x})" if "ptr" in s else ""
        return f"kfree of {plural(s['count'], 'object')} on CPU {s['cpu']}: {what}{ptr}"
    if do == "flush_cpu_slab":
        return f"flush_cpu_slab on CPU {s['cpu']}"
    if do == "write":
        return f"a stray write of {plural(s['bytes'], 'byte')} at {s['addr']:#x} (just past the object)"
    if do == "fragment":
        return (f"every free page taken ({s['blocks']} blocks), one order-{s['order']} block given back, "
                f"{s['small']} order-0 pages of it taken (the watermarks stop the rest) and every other one freed "
                f"({s['freed']}): free memory is single pages")
    return generic("setup", str(do), {k: v for k, v in s.items() if k != "do"})


def _setup_zh(s: dict[str, Any]) -> str:
    do = s["do"]
    if do == "kmalloc":
        where = f"CPU {s['cpu']}" + (f" (节点 {s['node']})" if "node" in s else "")
        text = f"在 {where} 上 kmalloc({s['size']}) {s['count']} 次"
        if s.get("what") == "one_slab":
            text += " (正好一个 slab)"
        elif s.get("what") == "two_slabs":
            text += " (正好两个 slab)"
        elif s.get("what") == "slabs":
            text += f" (正好 {s['slabs']} 个 slab)"
        return text
    if do == "kfree":
        what = FREED["zh"].get(s.get("what", ""), "")
        ptr = f" ({s['ptr']:#x})" if "ptr" in s else ""
        return f"在 CPU {s['cpu']} 上 kfree {s['count']} 个对象：{what}{ptr}"
    if do == "flush_cpu_slab":
        return f"在 CPU {s['cpu']} 上 flush_cpu_slab"
    if do == "write":
        return f"在 {s['addr']:#x} (紧接对象之后) 越界写入 {s['bytes']} 个字节"
    if do == "fragment":
        return (f"取走所有空闲页 ({s['blocks']} 块)，还回一块 order {s['order']}，从中取 {s['small']} 个 order 0 页 "
                f"(其余被水位线挡住)，再隔一个释放一个 ({s['freed']} 个)：空闲内存只剩单页")
    return generic("setup", str(do), {k: v for k, v in s.items() if k != "do"})


def _state_en(st: dict[str, Any]) -> list[str]:
    out = [f"cache {st['cache']}: object_size {st['object_size']}, size {st['size']}, "
           f"{plural(st['objects'], 'object')} per slab, order {st['order']} (min order {st['min_order']}), "
           f"free pointer at offset {st['offset']}; min_partial {st['min_partial']}, cpu_partial {st['cpu_partial']}, "
           f"cpu_partial_slabs {st['cpu_partial_slabs']}"]
    if st["cpu_slab"]:
        cpu = (f"cpu slab pfn {st['cpu_slab']:#x} (node {st['cpu_slab_node']}), c->freelist "
               f"{plural(st['cpu_freelist'], 'object')}, slab->freelist {plural(st['slab_freelist'], 'object')}")
    else:
        cpu = "no cpu slab"
    parts = st["cpu_partial_list"]
    if parts:
        cpu += "; per-CPU partial " + ", ".join(f"{p['pfn']:#x} ({p['free']} free)" for p in parts)
    else:
        cpu += "; per-CPU partial list empty"
    out.append(f"before: CPU {st['cpu']}: {cpu}")
    for nd in st["nodes"]:
        out.append(f"  node {nd['node']}: {plural(nd['nr_slabs'], 'slab')} ({nd['total_objects']} objects), "
                   f"nr_partial {nd['nr_partial']} with {nd['partial_free']} free objects")
    return out


def _state_zh(st: dict[str, Any]) -> list[str]:
    out = [f"缓存 {st['cache']}：object_size {st['object_size']}，size {st['size']}，每个 slab {st['objects']} 个对象，"
           f"order {st['order']} (最小 order {st['min_order']})，空闲指针偏移 {st['offset']}；min_partial "
           f"{st['min_partial']}，cpu_partial {st['cpu_partial']}，cpu_partial_slabs {st['cpu_partial_slabs']}"]
    if st["cpu_slab"]:
        cpu = (f"cpu slab pfn {st['cpu_slab']:#x} (节点 {st['cpu_slab_node']})，c->freelist {st['cpu_freelist']} "
               f"个对象，"
               f"slab->freelist {st['slab_freelist']} 个对象")
    else:
        cpu = "没有 cpu slab"
    parts = st["cpu_partial_list"]
    if parts:
        cpu += "；per-CPU partial " + "，".join(f"{p['pfn']:#x} (空闲 {p['free']})" for p in parts)
    else:
        cpu += "；per-CPU partial 链表为空"
    out.append(f"操作前：CPU {st['cpu']}：{cpu}")
    for nd in st["nodes"]:
        out.append(f"  节点 {nd['node']}：slab 共 {nd['nr_slabs']} 个 ({nd['total_objects']} 个对象)，nr_partial "
                   f"{nd['nr_partial']}，其中空闲对象 {nd['partial_free']} 个")
    return out


def _operation(op: dict[str, Any], node: int, zh: bool) -> str:
    call = op.get("call", "?")
    if call == "kfree":
        text = f"kfree({op['ptr']:#x})"
    elif call == "kmalloc":
        text = f"kmalloc({op['size']}, GFP_KERNEL)"
    elif call == "kmalloc_node":
        text = f"kmalloc_node({op['size']}, GFP_KERNEL, {op['node']})"
    elif call == "kmem_cache_alloc_bulk":
        text = f"kmem_cache_alloc_bulk({op['cache']}, GFP_KERNEL, {op['nr']})"
    elif call == "kmem_cache_free_bulk":
        text = f"kmem_cache_free_bulk({op['cache']}, {op['nr']}, p)"
    elif call in ("flush_cpu_slab", "kmem_cache_shrink"):
        text = f"{call}({op['cache']})"
    else:
        text = generic(call, "", {k: v for k, v in op.items() if k not in ("call", "cpu")}).rstrip(": ")
    cpu = op.get("cpu", 0)
    return f"操作：在 CPU {cpu} (节点 {node}) 上 {text}" if zh else f"operation: {text} on CPU {cpu} (node {node})"


def render_header(ex: Explanation, lang: str = "en", summary: str = "") -> str:
    """What was set up and the state that decides the SLUB operation, in ``lang``."""
    zh = lang == "zh"
    out = header_lines(ex, zh, summary)
    if ex.setup:
        steps = ("；" if zh else "; ").join((_setup_zh if zh else _setup_en)(s) for s in ex.setup)
        out.append(("准备：" if zh else "set up: ") + steps)
    st = ex.state
    if "cache" in st:
        out.extend(_state_zh(st) if zh else _state_en(st))
    out.append(_operation(ex.operation, st.get("node", 0), zh))
    return "\n".join(out) + "\n"


def render_explanation(ex: Explanation, lang: str = "en", *, summary: str = "", full: bool = False) -> str:
    """Header, a blank line, then the narration with SLUB's call graph and templates, then what the operation
    printed to the kernel log (a debug cache's reports)."""
    text = render_header(ex, lang, summary) + "\n" + narrate(ex.steps, lang, full=full, allocator=SLUB)
    log = ex.state.get("dmesg")
    if log:
        text += ("\n内核日志 (dmesg)：\n" if lang == "zh" else "\nkernel log (dmesg):\n") + "".join(
            f"  {line}\n" for line in log)
    return text
