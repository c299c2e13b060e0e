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

The data lives in its own modules, this one keeps the logic (call paths, layout, eliding, headers):
:mod:`~kslab.report.callgraph` (the call graph), :mod:`~kslab.report.narrate_en` (:data:`EN`) and
:mod:`~kslab.report.narrate_zh` (:data:`ZH`), the templates, keyed by ``(kernel function, step key)``, and
:mod:`~kslab.report.narrate_forms`, the steps whose wording depends on a value, written once for both.

Adding a step key, e.g. ``explain.step("shuffle_freelist", "shuffle", ...)`` recorded in ``kslab.mm``:

1. an entry ``("shuffle_freelist", "shuffle"): "..."`` in ``EN`` (narrate_en.py) and in ``ZH``
   (narrate_zh.py): a ``str.format_map`` text over the step's values (``{cache}``, ``{nr}``; a
   value the text names but the step lacks makes the step fall back to the generic rendering), or,
   when the wording depends on a value, a form in narrate_forms.py (the choice written once, over
   phrase keys) with its phrases in each language's ``_PHRASES``, the entry being ``_W["form"]``.  Derived
   fields (``gfp``, ``pages``, ``free``, ...) are computed by ``_derive`` below; add one there if
   both languages need it;
2. if the function is new to narration, its caller -> function edge in ``CALLS`` (callgraph.py), so
   the step is indented under its caller (``cache_init_objs`` -> ``shuffle_freelist``);
3. tests/report/test_narrate.py checks that every ``.step(FUNC, KEY`` in ``kslab/mm`` has a template
   in both languages; a golden file in tests/golden/explain shows the new line in context.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ..mm.explain import Step
from ..mm.gfp import show_gfp_flags
from . import callgraph_slub
from .callgraph import CALLS, MAX_HOPS, REENTRANT
from .narrate_en import EN
from .narrate_slub_en import SLUB_EN
from .narrate_slub_zh import SLUB_ZH
from .narrate_types import Template, Values
from .narrate_types import plural as _n
from .narrate_zh import ZH

if TYPE_CHECKING:
    from ..scenarios import Explanation

LANGS = ("en", "zh")
#: the allocators narration knows: each has its call graph and its templates (SLUB: mm/slub.c of 6.12,
#: callgraph_slub and narrate_slub_en/_zh; the two share function names such as kfree)
SLAB = "slab"
SLUB = "slub"


@dataclass(frozen=True, slots=True)
class Graph:
    """An allocator's static call graph (caller -> callees), its re-entrant edges and the longest chain searched."""

    calls: dict[str, tuple[str, ...]]
    reentrant: frozenset[tuple[str, str]]
    max_hops: int


GRAPHS = {SLAB: Graph(CALLS, REENTRANT, MAX_HOPS),
          SLUB: Graph(callgraph_slub.CALLS, callgraph_slub.REENTRANT, callgraph_slub.MAX_HOPS)}

# ---- call paths --------------------------------------------------------------------------------


@cache
def call_path(caller: str, callee: str, allocator: str = SLAB) -> tuple[str, ...] | None:
    """The shortest call chain from ``caller`` to ``callee`` (excluding ``caller``) in ``allocator``'s call
    graph, or None.

    ``call_path("slab_alloc", "____cache_alloc") == ("__do_cache_alloc", "____cache_alloc")``.
    """
    graph = GRAPHS[allocator]
    if caller == callee:
        return ()
    if (caller, callee) in graph.reentrant:
        return (callee,)
    seen = {caller}
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(caller, ())])
    while queue:
        f, path = queue.popleft()
        if len(path) >= graph.max_hops:
            continue
        for g in graph.calls.get(f, ()):
            if (f, g) in graph.reentrant or g in seen:
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


def layout(steps: Iterable[Step], allocator: str = SLAB) -> list[Line]:
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
            p = call_path(stack[i][0], s.func, allocator)
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


def step_depths(steps: Sequence[Step], allocator: str = SLAB) -> list[int]:
    """The depth of each step (the ``calls`` lines left out)."""
    return [ln.depth for ln in layout(steps, allocator) if not ln.synthetic]


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


def _derive(v: dict[str, Any]) -> Values:
    d = Values(v)
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
    for ptr in ("next", "freelist"):
        if ptr in v and isinstance(v[ptr], int):
            d[ptr + "_ptr"] = f"{v[ptr]:#x}" if v[ptr] else "NULL"
    if "was" in v:
        d["was_list"] = f"slabs_{v['was']}" if v["was"] != "none" else "-"
    return d

TEMPLATES: dict[str, dict[tuple[str, str], Template]] = {"en": EN, "zh": ZH}
SLUB_TEMPLATES: dict[str, dict[tuple[str, str], Template]] = {"en": SLUB_EN, "zh": SLUB_ZH}
ALLOCATOR_TEMPLATES = {SLAB: TEMPLATES, SLUB: SLUB_TEMPLATES}

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
    ("cache_init_objs", "shuffle_freelist"): {"en": "CONFIG_SLAB_FREELIST_RANDOM: shuffle_freelist lays the freelist "
                                                    "out before the constructors run",
                                              "zh": "CONFIG_SLAB_FREELIST_RANDOM：先由 shuffle_freelist 排好 freelist，"
                                                    "再运行构造函数"},
}
# SLUB's silent functions on the way to a recorded one
SLUB_CALLS_SPECIAL: dict[tuple[str, str], dict[str, str]] = {
    ("slab_alloc_node", "__slab_alloc_node"): {"en": "slab_pre_alloc_hook (no memcg, no failslab) -> "
                                                     "__slab_alloc_node, tid = c->tid read before c->freelist",
                                               "zh": "slab_pre_alloc_hook (无 memcg，无 failslab) -> "
                                                     "__slab_alloc_node，"
                                                     "先读 c->tid 再读 c->freelist"},
    ("slab_free", "do_slab_free"): {"en": "slab_free_hook (no KASAN, no init_on_free) -> do_slab_free",
                                    "zh": "slab_free_hook (无 KASAN，无 init_on_free) -> do_slab_free"},
    ("discard_slab", "free_slab"): {"en": "dec_slabs_node (nr_slabs--, total_objects -= objects) -> free_slab",
                                    "zh": "dec_slabs_node (nr_slabs--，total_objects -= objects) -> free_slab"},
    ("flush_slab", "deactivate_slab"): {"en": "c->slab = NULL, c->freelist = NULL, tid stepped -> deactivate_slab",
                                        "zh": "c->slab = NULL，c->freelist = NULL，tid 递增 -> deactivate_slab"},
}
ELIDED_TEXT = {
    "en": "free_block: ... {n} more objects returned the same way: {partial} to the tail of slabs_partial, {free} to "
          "the head of slabs_free ({slabs_text}; --full shows every object) ...",
    "zh": "free_block: …… 另有 {n} 个对象按同样方式归还：{partial} 个所在 slab 放到 slabs_partial 尾，{free} 个所在 "
          "slab 放到 slabs_free 头 (涉及 {slabs} 个 slab；--full 显示每个对象) ……",
}


def render_step(func: str, key: str, values: dict[str, Any], lang: str = "en", allocator: str = SLAB) -> str:
    """One step as ``function: decision`` (without indentation), with ``allocator``'s templates."""
    if lang not in TEMPLATES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    t = ALLOCATOR_TEMPLATES[allocator][lang].get((func, key))
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


def narrate(steps: Iterable[Step], lang: str = "en", *, full: bool = False, indent: str = "  ",
            allocator: str = SLAB) -> str:
    """Render steps as text: one line per step, ``function: decision with the values``, indented by
    call depth in ``allocator``'s call graph.  Long free_block loops are shortened unless ``full``."""
    if lang not in TEMPLATES:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    lines = layout(steps, allocator)
    items: list[Line | tuple[int, dict[str, int]]] = list(lines) if full else _elide(lines)
    out = []
    for it in items:
        if isinstance(it, tuple):
            depth, summary = it
            out.append(indent * depth + ELIDED_TEXT[lang].format_map({**summary,
                                                                      "slabs_text": _n(summary["slabs"], "slab")}))
        elif it.synthetic:
            special = (SLUB_CALLS_SPECIAL if allocator == SLUB else CALLS_SPECIAL).get((it.func, it.values["callee"]))
            text = (f"{it.func}: {special[lang]}" if special is not None
                    else CALLS_TEXT[lang].format(func=it.func, callee=it.values["callee"]))
            out.append(indent * it.depth + text)
        else:
            out.append(indent * it.depth + render_step(it.func, it.key, it.values, lang, allocator))
    return "\n".join(out) + ("\n" if out else "")


# ---- the header of an explained operation ------------------------------------------------------

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


def header_lines(ex: Explanation, zh: bool, summary: str) -> list[str]:
    """The header's scenario and machine lines, the same for either allocator."""
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
    return out


def render_header(ex: Explanation, lang: str = "en", summary: str = "") -> str:
    """What was set up and the state that decides the operation, in ``lang``."""
    zh = lang == "zh"
    out = header_lines(ex, zh, summary)
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
