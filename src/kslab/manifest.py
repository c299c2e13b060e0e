"""Cache manifests (``--caches FILE``): a kernel's cache creations, in order, with boot directives.

One ``kmem_cache_create`` per line: ``name size align flags ctor`` (flags hex or ``SLAB_A|SLAB_B``,
ctor 0 or 1); ``#`` starts a comment; ``@init_late`` and ``@cpu_up N`` place boot events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .mm.config import MachineConfig
from .mm.errors import KslabError
from .mm.kernel import Kernel
from .mm.slab_def import SLAB_FLAG_NAMES, parse_flag_text


class ManifestError(KslabError):
    """A bad line in a cache manifest: names the file, the line and the reason."""

    def __init__(self, path: str, lineno: int, reason: str) -> None:
        super().__init__(f"{path}:{lineno}: {reason}" if lineno else f"{path}: {reason}")
        self.path = path
        self.lineno = lineno
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Create:
    name: str
    size: int
    align: int
    flags: int
    ctor: bool
    lineno: int = 0
    useroffset: int = -1  # -1: not given; kslab then uses its table of 5.10's usercopy caches
    usersize: int = -1


# Caches that 5.10 creates with kmem_cache_create_usercopy() (a hardened-usercopy window makes a
# cache unmergeable).  A manifest line of the 5-field format carries no usercopy data, so these
# come from the kernel source (fork.c, dcache.c, namei.c, proc, skbuff.c, utsname, raw.c, ...).
USERCOPY_CACHES: dict[str, tuple[int, int]] = {
    "task_struct": (2880, 512), "mm_struct": (344, 368), "names_cache": (0, 4096), "dentry": (56, 32),
    "proc_dir_entry": (172, 16), "skbuff_head_cache": (40, 48), "uts_namespace": (4, 390), "RAW": (904, 4),
    "RAWv6": (1, 32), "SCTP": (1, 8), "SCTPv6": (1, 8), "9p-fcall-cache": (11, 1 << 30),
    "ext4_inode_cache": (1, 60), "ext2_inode_cache": (1, 60), "ext3_inode_cache": (1, 60),
    "jfs_ip": (1, 128), "ufs_inode_cache": (1, 60), "scsi_sense_cache": (0, 96), "thread_stack": (0, 16384),
    "kvm_vcpu": (1, 1024), "cifs_request": (0, 1 << 30), "cifs_small_rq": (0, 1 << 30), "orangefs_inode_cache": (1, 8),
    "vxfs_inode": (1, 96), "befs_inode_cache": (1, 144), "exofs_inode_cache": (1, 64), "sysv_inode_cache": (1, 40),
}


def usercopy_window(name: str, size: int) -> tuple[int, int]:
    """(useroffset, usersize) that 5.10 gives a cache of this name, clamped to its size; (0, 0) if none."""
    win = USERCOPY_CACHES.get(name)
    if win is None and name.startswith("9p-fcall-cache"):
        win = USERCOPY_CACHES["9p-fcall-cache"]
    if win is None:
        return (0, 0)
    off, n = win
    off = min(off, size - 1)
    return (off, max(1, min(n, size - off)))


@dataclass(frozen=True, slots=True)
class Directive:
    what: str  # "init_late" or "cpu_up"
    arg: int = -1
    lineno: int = 0


Entry = Create | Directive


def parse_flags(text: str) -> int:
    """5.10's cache flags from hex, decimal or ``SLAB_A|SLAB_B``."""
    return parse_flag_text(text, SLAB_FLAG_NAMES, "0x2000")


def parse_manifest(lines: Iterable[str], path: str = "<manifest>") -> list[Entry]:
    out: list[Entry] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0].startswith("@"):
            what = words[0][1:]
            if what == "init_late" and len(words) == 1:
                out.append(Directive("init_late", -1, lineno))
            elif what == "cpu_up" and len(words) == 2 and words[1].isdigit():
                out.append(Directive("cpu_up", int(words[1]), lineno))
            else:
                raise ManifestError(path, lineno, f"unknown directive {line!r} (expected @init_late or @cpu_up N)")
            continue
        if len(words) not in (5, 7):
            hint = ""
            if "[" in line and ": " in line:
                hint = " (this looks like a trace line: give the trace as TRACE and a cache manifest or creation log " \
                       "with --caches)"
            raise ManifestError(path, lineno, f"expected 'name size align flags ctor [useroffset usersize]', "
                                f"got {len(words)} fields{hint}")
        name, size_s, align_s, flags_s, ctor_s = words[:5]
        useroffset = usersize = -1
        if len(words) == 7:
            try:
                useroffset, usersize = int(words[5], 0), int(words[6], 0)
            except ValueError:
                raise ManifestError(path, lineno, "useroffset and usersize must be numbers") from None
        try:
            size = int(size_s, 0)
            align = int(align_s, 0)
        except ValueError:
            raise ManifestError(path, lineno, f"size and align must be numbers, not {size_s!r} {align_s!r}") from None
        if size <= 0 or size > 1 << 31:
            raise ManifestError(path, lineno, f"impossible size {size}")
        if align < 0 or (align and align & (align - 1)):
            raise ManifestError(path, lineno, f"align {align} is not 0 or a power of two")
        try:
            flags = parse_flags(flags_s)
        except ValueError as e:
            raise ManifestError(path, lineno, str(e)) from None
        if ctor_s not in ("0", "1"):
            raise ManifestError(path, lineno, f"ctor must be 0 or 1, not {ctor_s!r}")
        out.append(Create(name, size, align, flags, ctor_s == "1", lineno, useroffset, usersize))
    return out


def parse_creation_log(lines: Iterable[str], path: str = "<caches.log>") -> list[Entry]:
    """A kernel creation log (``kslab-oracle:`` printk lines, as in dmesg) as manifest entries.

    ``create ... via=create`` lines are kmem_cache_create calls (with their usercopy window);
    ``kmem_cache_init_late`` and ``cpuup_prepare cpu=N`` are the boot directives.
    """
    out: list[Entry] = []
    for lineno, raw in enumerate(lines, 1):
        i = raw.find("kslab-oracle: ")
        if i < 0:
            continue
        words = raw[i + 14:].split()
        if not words:
            continue
        what = words[0]
        f = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            if what == "create" and f.get("via") == "create":
                out.append(Create(f["name"], int(f["size"]), int(f["align"]), int(f["flags"], 0),
                                  f.get("ctor", "0") == "1", lineno, int(f.get("useroffset", "0")),
                                  int(f.get("usersize", "0"))))
            elif what == "kmem_cache_init_late":
                out.append(Directive("init_late", -1, lineno))
            elif what == "cpuup_prepare":
                out.append(Directive("cpu_up", int(f["cpu"]), lineno))
        except (KeyError, ValueError) as e:
            raise ManifestError(path, lineno, f"bad creation-log line ({e})") from None
    return out


BOOT_CACHE_PREFIXES = ("kmalloc-", "dma-kmalloc-", "kmem_cache")


def caches_from_slabinfo(text: str, config: MachineConfig, path: str = "<slabinfo>") -> list[Entry]:
    """The caches of a traced kernel from its /proc/slabinfo: one creation per listed cache (oldest
    first, i.e. the file read bottom-up), with a size, alignment and flags that reproduce the listed
    objsize, objperslab and pagesperslab on this machine.  The object_size of a cache is not in
    /proc/slabinfo, so the stride is used; merged caches are already folded into their survivor."""
    from .mm.slab_def import SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT  # noqa: PLC0415
    from .trace.slabinfo_parse import parse_slabinfo  # noqa: PLC0415
    rows = parse_slabinfo(text, path)
    scratch = Kernel(config)
    scratch.boot_params.slab_nomerge = True
    out: list[Entry] = []
    for lineno, (name, row) in enumerate(reversed(list(rows.items())), 1):
        if name.startswith(BOOT_CACHE_PREFIXES):
            continue
        size, num, pages = row["objsize"], row["objperslab"], row["pagesperslab"]
        chosen = None
        for flags, ctor, align in ((0, False, 0), (SLAB_HWCACHE_ALIGN, False, 0), (0, True, 0),
                                   (SLAB_HWCACHE_ALIGN, True, 0), (SLAB_RECLAIM_ACCOUNT, False, 0),
                                   (SLAB_RECLAIM_ACCOUNT | SLAB_HWCACHE_ALIGN, False, 0),
                                   (SLAB_RECLAIM_ACCOUNT, True, 0), (0, False, size & -size)):
            c = scratch.kmem_cache_create(f"probe-{lineno}-{flags}-{ctor}", size, align, flags, ctor or None)
            if c is None:
                continue
            ok = c.size == size and c.num == num and (1 << c.gfporder) == pages
            scratch.kmem_cache_destroy(c)
            if ok:
                chosen = (flags, ctor, align)
                break
        if chosen is None:
            chosen = (0, False, 0)  # nothing reproduces it exactly: the kernel had a config we lack
        flags, ctor, align = chosen
        # every listed cache is a cache of its own in that kernel: a usercopy window over the whole
        # object keeps kslab from merging them into one another (merges already happened there)
        out.append(Create(name, size, align, flags, ctor, lineno, 0, size))
    return out


def read_manifest(path: str | Path, config: MachineConfig | None = None) -> list[Entry]:
    """Read a manifest, a kernel's creation log (detected by its ``kslab-oracle:`` lines), or a
    /proc/slabinfo of the traced kernel (needs ``config``); ``.xz``/``.gz`` files are decompressed."""
    p = Path(path)
    try:
        if p.suffix == ".xz":
            import lzma  # noqa: PLC0415
            with lzma.open(p, "rt", encoding="utf-8", errors="replace") as f:
                text = f.read()
        elif p.suffix == ".gz":
            import gzip  # noqa: PLC0415
            with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
                text = f.read()
        else:
            text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ManifestError(str(path), 0, f"cannot read: {e.strerror}") from None
    except (EOFError, ValueError) as e:
        raise ManifestError(str(path), 0, f"cannot decompress: {e}") from None
    except Exception as e:  # lzma.LZMAError, gzip.BadGzipFile
        if e.__class__.__name__ in ("LZMAError", "BadGzipFile"):
            raise ManifestError(str(path), 0, f"cannot decompress: {e}") from None
        raise
    lines = text.splitlines()
    if lines and lines[0].startswith("slabinfo - version:"):
        return caches_from_slabinfo(text, config or MachineConfig(), str(path))
    if any("kslab-oracle: " in line for line in lines[:50]):
        return parse_creation_log(lines, str(path))
    return parse_manifest(lines, str(path))


class ManifestBoot:
    """Applies a manifest to a machine step by step (replay interleaves it with trace events)."""

    def __init__(self, k: Kernel, entries: list[Entry], path: str = "<manifest>") -> None:
        self.k = k
        self.entries = entries
        self.pos = 0
        self.path = path
        self.has_directives = any(isinstance(e, Directive) for e in entries)

    def apply(self, e: Entry, cpu: int = 0) -> None:
        """Apply one entry; a creation runs on ``cpu`` (the boot CPU unless a trace says otherwise)."""
        k = self.k
        if isinstance(e, Directive):
            if e.what == "init_late":
                k.init_late()
            else:
                if e.arg >= k.nr_cpu_ids:
                    # a smaller machine than the manifest's (a what-if): that CPU never comes up, and a
                    # replay maps its events onto the CPUs there are
                    k.printk(f"kslab: manifest line {e.lineno}: @cpu_up {e.arg} skipped: the machine has "
                             f"{k.nr_cpu_ids} CPUs")
                    return
                k.cpu_up(e.arg)
            return
        if e.usersize >= 0:
            useroffset, usersize = e.useroffset, e.usersize
        else:
            useroffset, usersize = usercopy_window(e.name, e.size)
        c = k.kmem_cache_create(e.name, e.size, e.align, e.flags, True if e.ctor else None, useroffset, usersize,
                                cpu=cpu)
        if c is None:
            k.printk(f"kslab: manifest line {e.lineno}: {e.name} could not be created")

    def step(self, cpu: int = 0) -> Entry | None:
        if self.pos >= len(self.entries):
            return None
        e = self.entries[self.pos]
        self.pos += 1
        self.apply(e, cpu)
        return e

    def run_all(self) -> None:
        while self.step() is not None:
            pass

    def finish(self) -> None:
        """After the last entry: whatever boot steps the manifest did not place."""
        self.run_all()
        self.k.boot_complete()


def boot_machine(config: MachineConfig, manifest: list[Entry] | None = None, path: str = "<manifest>") -> Kernel:
    """Boot a machine and replay a manifest's creations (with its directives, or after a complete boot)."""
    k = Kernel(config, boot=False)
    k.boot_early()
    if not manifest:
        k.boot_complete()
        return k
    mb = ManifestBoot(k, manifest, path)
    if not mb.has_directives:
        k.boot_complete()
    mb.finish()
    return k
