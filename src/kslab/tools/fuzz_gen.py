"""The trace generator of the fuzzer (:mod:`kslab.tools.fuzz`): random adversarial traces of every layout
the parser knows, then mutated (see fuzz.py's docstring for what they hold).  Every choice comes from the
``random.Random`` given, so a seed gives the same trace.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = [
    "CACHE_NAMES", "COMMS", "FUNCS", "GFPS", "HEADERS", "INTERNAL_ALLOC", "MARKS", "OTHER", "SITES", "WEIRD",
    "TraceGen", "random_trace",
]

COMMS = ("<idle>", "init", "kworker/0:1", "cut", "bash", "my task", "a-b-c", "x: y", "sh]", "\u00e9t\u00e9", "")
CACHE_NAMES = ("dentry", "kmalloc-64", "kmalloc-4k", "names_cache", "kmem_cache", "ftrace_event_field", "vmap_area",
               "filp", "no-such-cache", "my cache", "<script>alert(1)</script>", "a&b\"c'", "\u00f1ame", "kmalloc-1k",
               "pool_workqueue", "kmem_cache_node", "")
SITES = ("getname_flags+0x2b/0x180", "__d_alloc+0x22/0x1d0", "alloc_desc+0x39/0x1d0", "f", "ffffffff81234567",
         "ext4_foo+0x10/0x20 [ext4]", "create_cache+0x5a/0x1b0", "kmem_cache_create_usercopy+0x1/0x2",
         "alloc_arraycache+0x1/0x2", "__alloc_alien_cache+0x1/0x2", "init_cache_node+0x1/0x2",
         "setup_kmem_cache_node+0x1/0x2", "cache_grow_begin+0x1/0x2", "alloc_slabmgmt+0x1/0x2",
         "slab_destroy+0x1/0x2", "free_alien_cache+0x1/0x2", "kmem_cache_release+0x1/0x2",
         "__kmem_cache_release+0x1/0x2", "seq_read_iter+0x1/0x2", "alloc_bprm+0x1/0x2", "x+0x1/0x2 [mod with space]")
INTERNAL_ALLOC = ("create_cache", "kmem_cache_create_usercopy", "alloc_arraycache", "__alloc_alien_cache",
                  "init_cache_node", "setup_kmem_cache_node", "cache_grow_begin", "alloc_slabmgmt")
GFPS = ("GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_KERNEL_ACCOUNT", "GFP_DMA",
        "__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE", "GFP_KERNEL|__GFP_NEWFLAG", "0x0", "0xffffffffffffffff", "",
        "__GFP_DMA|__GFP_DMA32", "GFP_KERNEL|GFP_ZERO", "__GFP_MEMALLOC", "none")
FUNCS = ("cache_alloc_refill <-__kmalloc", "cache_reap <-process_one_work", "cache_grow_begin <-cache_alloc_refill",
         "enable_cpucache <-kmem_cache_init_late", "setup_kmem_cache_node <-cpuup_prepare",
         "kmem_cache_shrink <-acpi_os_purge_cache", "free_block <-cache_flusharray", "foo+0x1c/0x80 <-bar",
         "lonely_function", "kmem_cache_shrink <-nobody")
MARKS = ("oracle: snapshot 0-start begin", "oracle: snapshot 0-start end", "snapshot files begin", "retune written: "
         "dentry 120 60 8", "hello", "", "<b>bold</b>", "snapshot ../../etc/passwd begin", "snapshot a/b begin")
OTHER = ("sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b", "irq_handler_entry: irq=1 name=timer",
         "kmem_cache_alloc_bulk: n=3", "mm_page_pcpu_drain: page=0 pfn=1 order=0 migratetype=0")
WEIRD = ("", "-1", "-99999999999999999999", "0", "18446744073709551616", "9" * 30, "0x", "(null)", "(nil)", "abc",
         "1e9", "inf", "nan", " ", "=", "\x00", "\ufffd", "0x" + "f" * 40, "+5", "1_000")
HEADERS = ("# tracer: nop", "#", "# entries-in-buffer/entries-written: 5/5   #P:2", "cpus=4", "version = 6",
           "CPU 1 is empty", "--------------------", "CPU:1 [LOST 42 EVENTS]", "CPU:0 [EVENTS DROPPED]",
           " => kmem_cache_alloc", " <stack trace>", " 0)   0.123 us    |  kfree();", "", "   ")


class TraceGen:
    """Random adversarial traces; every choice comes from ``rng``, so a seed gives the same trace."""

    def __init__(self, rng: random.Random, wild: float = 0.15, internal_sites: bool = True) -> None:
        self.rng = rng
        self.wild = wild  # probability of an adversarial value where one can go
        # the call sites of the model's own allocations (which the replay pairs with the model's structures)
        self.sites = SITES if internal_sites else tuple(s for s in SITES if s.split("+")[0] not in INTERNAL_ALLOC)
        self.ptrs: list[int] = []
        self.ts = 0.0
        self.counter = rng.random() < 0.15
        self.layout = rng.choice(("ftrace", "irq", "tgid", "trace-cmd", "latency", "perf", "mixed"))

    def _pick(self, normal: Callable[[], str]) -> str:
        return self.rng.choice(WEIRD) if self.rng.random() < self.wild else normal()

    def ptr(self, fresh: bool) -> str:
        rng = self.rng
        r = rng.random()
        if r < self.wild * 0.5:
            return rng.choice(("0", "(null)", "10", "16", "17", "ffffffffffffffff", "1" + "0" * 30,
                               "0000123400000000", "-5", "ffff8880" + "zz" * 4, "fffffffffff"))
        if not fresh and self.ptrs and r < 0.9:
            return f"{rng.choice(self.ptrs):x}"
        p = 0xFFFF888000000000 + rng.randrange(1 << 20) * rng.choice((8, 64, 192, 4096))
        if len(self.ptrs) < 300:
            self.ptrs.append(p)
        else:
            self.ptrs[rng.randrange(300)] = p
        return f"{p:x}"

    def timestamp(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < self.wild * 0.2:
            return rng.choice(("-1.0", "1e5", "inf", "99999999999.5", "0.5.5", "abc", "9" * 400 + ".0", "1.", ".5"))
        if r < self.wild * 0.4:
            self.ts = max(0.0, self.ts - rng.random() * 5)  # backwards
        else:
            self.ts += rng.random() * (0.01 if rng.random() < 0.95 else 30)
        return str(int(self.ts * 1e6)) if self.counter else f"{self.ts:.6f}"

    def prefix(self) -> str:
        rng = self.rng
        comm = rng.choice(COMMS)
        pid = rng.choice((0, 1, 58, 1234, 4194304)) if rng.random() > self.wild * 0.3 else rng.choice(WEIRD)
        cpu = rng.choice((0, 0, 0, 1, 1, 2, 3)) if rng.random() > self.wild else rng.choice((7, 63, 255, 4096, 10**12))
        ts = self.timestamp()
        layout = self.layout if self.layout != "mixed" else rng.choice(("ftrace", "irq", "tgid", "latency", "perf"))
        flags = rng.choice(("d...", "....", "dp.1", "d.h2", "dNs.")) if rng.random() > 0.05 else ""
        if layout == "ftrace":
            return f"{comm:>16}-{pid:<7} [{cpu:03}] {ts}: "
        if layout in ("irq", "trace-cmd"):
            return f"{comm:>16}-{pid:<7} [{cpu:03}] {flags} {ts}: "
        if layout == "tgid":
            return f"{comm:>16}-{pid:<7} ({rng.choice(('  1', '-----', '123'))}) [{cpu:03}] {flags} {ts}: "
        if layout == "latency":
            return f"{comm:>16}-{pid:<7} {cpu}{flags or 'd'} {ts}: "
        return f"{comm:>16} {pid:>6} [{cpu:03}] {ts}: "

    def payload(self) -> str:
        rng = self.rng
        perf = self.layout == "perf"
        sub = "kmem:" if perf else ""
        kind = rng.choices(("alloc", "free", "page", "mark", "func", "other"), (40, 35, 6, 5, 10, 4))[0]
        site = rng.choice(self.sites) if rng.random() > self.wild * 0.3 else rng.choice(WEIRD)
        if kind == "alloc":
            ev = rng.choice(("kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node"))
            req = self._pick(lambda: str(rng.choice((8, 24, 48, 64, 100, 192, 256, 448, 4096, 5000, 70000))))
            alloc = self._pick(lambda: req if req.isdigit() and rng.random() < 0.5 else
                               str(rng.choice((8, 32, 64, 128, 192, 256, 512, 4096, 8192, 131072))))
            text = (f"{sub}{ev}: call_site={site} ptr={self.ptr(True)} bytes_req={req} bytes_alloc={alloc} "
                    f"gfp_flags={rng.choice(GFPS)}")
            if ev.endswith("_node") or rng.random() < 0.2:
                text += f" node={self._pick(lambda: str(rng.choice((-1, 0, 1, 3))))}"
            if rng.random() < 0.15:
                text += f" accounted={rng.choice(('true', 'false', 'maybe'))}"
            if ev.startswith("kmem_cache") and rng.random() < 0.85:
                text += f" name={rng.choice(CACHE_NAMES)}"
            return text
        if kind == "free":
            ev = rng.choice(("kfree", "kmem_cache_free"))
            text = f"{sub}{ev}: call_site={site} ptr={self.ptr(False)}"
            if ev == "kmem_cache_free" and rng.random() < 0.85:
                text += f" name={rng.choice(CACHE_NAMES)}"
            return text
        if kind == "page":
            ev = rng.choice(("mm_page_alloc", "mm_page_free", "mm_page_free_batched"))
            text = f"{sub}{ev}: page={self.ptr(True)} pfn={self._pick(lambda: str(rng.randrange(1 << 20)))}"
            if ev != "mm_page_free_batched" or rng.random() < 0.3:
                text += f" order={self._pick(lambda: str(rng.randrange(11)))}"
            if ev == "mm_page_alloc":
                text += f" migratetype={rng.randrange(6)} gfp_flags={rng.choice(GFPS)}"
            return text
        if kind == "mark":
            mark = rng.choice(MARKS)
            return f"print: tracing_mark_write: {mark}" if perf or rng.random() < 0.2 else f"tracing_mark_write: {mark}"
        if kind == "func":
            f = rng.choice(FUNCS)
            return f"function: {f.replace(' <-', ' <-- ')}" if perf or rng.random() < 0.2 else f
        return rng.choice(OTHER)

    def line(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.03:
            return rng.choice(HEADERS)
        text = self.prefix() + self.payload()
        if rng.random() < self.wild:
            text = self.mutate(text)
        return text

    def mutate(self, text: str) -> str:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            n = len(text)
            what = rng.randrange(6)
            i = rng.randrange(n + 1)
            if what == 0:
                text = text[:i]  # cut short
            elif what == 1:
                text = text[:i] + text[i + rng.randint(1, 8):]
            elif what == 2:
                text = text[:i] + rng.choice(("\x00", "\xff", ": ", "=", " ", "[", "]", "-", "\t", "\u2028",
                                              "\u0661", "\r")) + text[i:]
            elif what == 3 and n > 2:
                j = rng.randrange(n)
                chars = list(text)
                chars[i % n], chars[j] = chars[j], chars[i % n]
                text = "".join(chars)
            elif what == 4:
                text = text[:i] + rng.choice(WEIRD) + text[i:]
            else:
                text = text + " " + text[:i]
        return text

    def trace(self, n: int) -> bytes:
        rng = self.rng
        r = rng.random()
        if r < 0.02:
            return b""
        head = [HEADERS[0], "#"] if rng.random() < 0.7 else []
        if self.layout == "trace-cmd":
            head = ["cpus=4", *head]
        if r < 0.05:
            return "\n".join(rng.choice(HEADERS) for _ in range(n)).encode()
        lines = head + [self.line() for _ in range(n)]
        if rng.random() < 0.05:
            lines.insert(rng.randrange(len(lines) + 1), lines[rng.randrange(len(lines))] if lines else "")
        sep = "\r\n" if rng.random() < 0.1 else "\n"
        data = (sep.join(lines) + (sep if rng.random() < 0.8 else "")).encode("utf-8", "surrogatepass")
        r = rng.random()
        if r < 0.05:
            data = data[: rng.randrange(len(data) + 1)]  # cut at a random byte (maybe inside a UTF-8 sequence)
        elif r < 0.08:
            data = b"\xef\xbb\xbf" + data
        elif r < 0.11:
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.randbytes(rng.randint(1, 300)) + data[at:]
        return data


def random_trace(rng: random.Random, n: int | None = None, wild: float = 0.15, internal_sites: bool = True) -> bytes:
    """One random adversarial trace of about ``n`` lines (random when None); ``internal_sites=False`` leaves out
    the call sites of the model's internal allocations (``--skip-known``)."""
    return TraceGen(rng, wild, internal_sites).trace(n if n is not None else rng.choice((0, 1, 3, 10, 40, 150)))


# ---- the checks ------------------------------------------------------------------------------------
