"""What the kernel reports: the dmesg lines (printk), WARN and BUG, taint, the misuse records, the callers'
symbols (%pS) and the creation log in the format of the oracle kernel's ``kslab-oracle:`` lines.

:class:`KernelDiagnostics` is a base class of :class:`~kslab.mm.kernel.Kernel` (the class is not used on its
own); the state it works on is the kernel's :class:`Diagnostics`, ``Kernel.diag``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from .errors import KernelBug

if TYPE_CHECKING:
    from .slab_def import KmemCache

__all__ = ["KERNEL_TEXT_START", "TAINT_FLAGS", "Diagnostics", "KernelDiagnostics", "Misuse"]

# print_tainted(): one column per flag of include/linux/kernel.h's TAINT_* bits, in bit order
# (set letter, clear letter); a clean P column shows 'G'.
TAINT_FLAGS = (("P", "G"), ("F", " "), ("S", " "), ("R", " "), ("M", " "), ("B", " "), ("U", " "), ("D", " "),
               ("A", " "), ("W", " "), ("C", " "), ("I", " "), ("O", " "), ("E", " "), ("L", " "), ("K", " "),
               ("X", " "), ("T", " "))
KERNEL_TEXT_START = 0xFFFFFFFF81000000  # x86_64 _text without KASLR: where ksym() places callers


@dataclass
class Misuse:
    """One misuse the model detected (the debug checks, hardened checks, bad frees).

    ``kind`` names the misuse (``double_free``, ``use_after_free``, ``overflow``,
    ``double_free_or_overflow``, ``wrong_cache``, ``not_slab``, ``bad_pointer``, ``destroy_busy``, ...),
    ``check`` the kernel function that caught it (``verify_redzone_free``, ``slab_put_obj``,
    ``check_poison_obj``, ``__free_one``, ``cache_from_obj``, ...).  ``ptr`` is the object as its user
    sees it.  ``messages`` are the dmesg lines of this report, in order; ``last_user`` is the caller
    recorded in the object's SLAB_STORE_USER word before the check (0 when the cache does not store
    it); ``caller`` is the ``caller`` argument of the operation that found the misuse (0 if unknown).
    """

    kind: str
    cache: str
    ptr: int
    cpu: int
    jiffies: int
    messages: list[str] = field(default_factory=list)
    last_user: int = 0
    caller: int = 0
    check: str = ""


class Diagnostics:
    """What the machine has reported (``Kernel.diag``): the kernel log (``dmesg``, printk's buffer), the
    :class:`Misuse` records (``misuse``) and those still collecting their lines (``reports``), the taint
    flags (``tainted``, the kernel's tainted_mask), the WARN_ONCE keys already printed (``warned``), ksym()'s
    symbols (``symbols``: address -> (name, size)) and the ``kslab-oracle:`` creation log (``creation_log``)."""

    __slots__ = ("creation_log", "dmesg", "misuse", "reports", "symbols", "tainted", "warned")

    def __init__(self) -> None:
        self.dmesg: list[str] = []
        self.misuse: list[Misuse] = []
        self.reports: list[Misuse] = []  # misuse reports being collected (misuse_report)
        self.symbols: dict[int, tuple[str, int]] = {}
        self.tainted: set[str] = set()
        self.warned: set[str] = set()
        self.creation_log: list[str] = []


class KernelDiagnostics:
    """printk(), WARN/BUG, taint, misuse records and the creation log of :class:`~kslab.mm.kernel.Kernel`."""

    cpu: int
    jiffies: int
    diag: Diagnostics

    if TYPE_CHECKING:
        def nr_cpus_node(self, node: int) -> int: ...

    @property
    def dmesg(self) -> list[str]:
        """The kernel log so far, one line an entry (``diag.dmesg``; as SlubKernel's ``dmesg``)."""
        return self.diag.dmesg

    @property
    def misuse(self) -> list[Misuse]:
        """Every misuse detected so far, oldest first (``diag.misuse``)."""
        return self.diag.misuse

    def printk(self, msg: str) -> None:
        """One dmesg line; it also belongs to every misuse report being collected (misuse_report)."""
        self.diag.dmesg.append(msg)
        for rec in self.diag.reports:
            rec.messages.append(msg)

    @contextmanager
    def misuse_report(self, kind: str, cachep: KmemCache | None, ptr: int, *, check: str = "", last_user: int = 0,
                      caller: int = 0) -> Iterator[Misuse]:
        """Collect one detected misuse: a :class:`Misuse` record is appended to ``k.misuse`` at once and
        every dmesg line printed inside the ``with`` block becomes one of its ``messages`` (the
        kernel's report).  The record stays when the block ends in :class:`KernelBug`."""
        rec = Misuse(kind, cachep.name if cachep is not None else "", ptr, self.cpu, self.jiffies, [],
                     last_user, caller, check)
        self.diag.misuse.append(rec)
        self.diag.reports.append(rec)
        try:
            yield rec
        finally:
            self.diag.reports.remove(rec)

    def report_misuse(self, kind: str, cachep: KmemCache | None, ptr: int, messages: Iterable[str] = (), *,
                      check: str = "", last_user: int = 0, caller: int = 0) -> Misuse:
        """Record a misuse whose report (``messages``, possibly none) is already in dmesg."""
        rec = Misuse(kind, cachep.name if cachep is not None else "", ptr, self.cpu, self.jiffies,
                     list(messages), last_user, caller, check)
        self.diag.misuse.append(rec)
        return rec

    def warn(self, msg: str, objp: int = 0, *, kind: str = "warning", check: str = "",
             cachep: KmemCache | None = None, last_user: int = 0) -> None:
        """WARN(cond, msg): the message, taint W, and a misuse record."""
        with self.misuse_report(kind, cachep, objp, check=check, last_user=last_user):
            self.printk(msg)
        self.taint("W")

    def warn_once(self, key: str, msg: str, objp: int = 0, *, kind: str = "", check: str = "",
                  cachep: KmemCache | None = None) -> None:
        """WARN_ONCE(key): printed (and taint W) the first time only; every occurrence is a misuse record
        (of ``kind``, default ``key``)."""
        with self.misuse_report(kind or key, cachep, objp, check=check):
            if key not in self.diag.warned:
                self.diag.warned.add(key)
                self.printk(msg)
                self.taint("W")

    def taint(self, flag: str) -> None:
        self.diag.tainted.add(flag)

    def print_tainted(self) -> str:
        """print_tainted(): ``Not tainted``, or one column per taint flag (``Tainted: G    B``...)."""
        if not self.diag.tainted:
            return "Not tainted"
        return "Tainted: " + "".join(on if on in self.diag.tainted else off for on, off in TAINT_FLAGS)

    def ksym(self, name: str, size: int = 0x100) -> int:
        """A kernel text address for the function ``name`` (to pass as ``caller``): SLAB_STORE_USER
        reports then print it as the kernel's %pS does, ``name+0x0/0x100``."""
        for addr, (n, _) in self.diag.symbols.items():
            if n == name:
                return addr
        addr = KERNEL_TEXT_START + sum(sz for _, sz in self.diag.symbols.values())
        self.diag.symbols[addr] = (name, size)
        return addr

    def symbolize(self, addr: int) -> str:
        """%pS of a caller address: ``name+off/size`` for a ksym() address, else the raw hex value."""
        for start, (name, size) in self.diag.symbols.items():
            if start <= addr < start + size:
                return f"{name}+{addr - start:#x}/{size:#x}"
        return f"{addr:#x}" if addr else "0x0"

    def bug(self, msg: str, function: str, cache: str = "", objp: int = 0, *, line: int = 0,
            file: str = "mm/slab.c") -> NoReturn:
        """BUG()/BUG_ON(): raise :class:`KernelBug` carrying ``msg``.  With ``line`` (the BUG's place in
        the 5.10 source) dmesg gets the kernel's own ``kernel BUG at mm/slab.c:<line>!`` report, ``msg``
        being what the kernel printed before it (or that same line); without, ``msg`` is printed."""
        if line:
            self.printk("------------[ cut here ]------------")
            self.printk(f"kernel BUG at {file}:{line}!")
        else:
            self.printk(msg)
        self.taint("D")
        raise KernelBug(msg, function=function, cache=cache, objp=objp)

    def bug_bad_free(self, cachep: KmemCache, objp: int, function: str) -> NoReturn:
        self.bug(f"kernel BUG at mm/slab.c: {function}: {objp:#x} does not belong to cache {cachep.name}",
                 function, cachep.name, objp)

    def panic(self, msg: str) -> NoReturn:
        self.printk("Kernel panic - not syncing: " + msg)
        raise KernelBug(msg, function="panic")

    def log(self, what: str, **fields: object) -> None:
        """The creation log, in the format of the oracle kernel's ``kslab-oracle:`` lines."""
        parts = [f"kslab-oracle: {what}"]
        for key, v in fields.items():
            parts.append(f"{key}={v:#x}" if key == "flags" and isinstance(v, int) else f"{key}={v}")
        self.diag.creation_log.append(" ".join(parts))

    def log_geometry(self, s: KmemCache) -> None:
        self.log("geometry", name=s.name, object_size=s.object_size, size=s.size, align=s.align, flags=s.flags,
                 num=s.num, gfporder=s.gfporder, colour=s.colour, colour_off=s.colour_off,
                 freelist_size=s.freelist_size,
                 freelist_cache=s.freelist_cache.name if s.freelist_cache is not None else "-",
                 obj_offset=s.obj_offset, limit=s.limit, batchcount=s.batchcount, shared=s.shared)

    def log_tune(self, s: KmemCache) -> None:
        self.log("tune", name=s.name, limit=s.limit, batchcount=s.batchcount, shared=s.shared)

    def log_free_limit(self, s: KmemCache, node: int, caller: str) -> None:
        n = s.node[node]
        if n is not None:
            self.log("free_limit", name=s.name, node=node, free_limit=n.free_limit,
                     node_cpus=self.nr_cpus_node(node), batchcount=s.batchcount, num=s.num, caller=caller)
