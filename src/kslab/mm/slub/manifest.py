"""SLUB cache manifests: a kernel's cache creations in order, and the boot that replays them.

A manifest is either the oracle's cache log (``kslab-oracle: create|alias|geometry ...`` lines, as in
``caches.log`` or dmesg) or a text file with one creation per line::

    name size align flags ctor [useroffset usersize [freeptr_offset]]

(flags hex with 6.12's values, or names such as ``SLAB_HWCACHE_ALIGN|SLAB_PANIC``; ctor 0 or 1;
freeptr_offset -1 for none; ``#`` starts a comment).  The boot and kmalloc caches are the model's own
(``kmem_cache_init``): only ``via=create`` requests are replayed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import KslabError
from ..slab_def import parse_flag_text
from .flags import SLAB_FLAG_NAMES
from .init import kmem_cache_init
from .slab_common import kmem_cache_create
from .slub_def import AliasRecord, CreateRecord, GeometryRecord, Slub, SlubConfig

LogRecord = CreateRecord | GeometryRecord | AliasRecord

_ORACLE = "kslab-oracle: "
_CREATE_INTS = ("size", "align", "useroffset", "usersize", "freeptr_offset")
_GEOMETRY_INTS = ("object_size", "size", "align", "order", "objects", "min_order", "min_objects", "offset",
                  "inuse", "red_left_pad", "min_partial", "cpu_partial", "cpu_partial_slabs")
_ALIAS_INTS = ("target_size", "object_size", "inuse", "refcount")


class SlubManifestError(KslabError):
    """A bad manifest or cache-log line: names the file, the line and the reason."""

    def __init__(self, path: str, lineno: int, reason: str) -> None:
        super().__init__(f"{path}:{lineno}: {reason}")
        self.path = path
        self.lineno = lineno
        self.reason = reason


def parse_flags(text: str) -> int:
    """``0x2010``, ``16`` or ``SLAB_A|SLAB_B`` (6.12's values); ValueError naming an unknown flag."""
    return parse_flag_text(text, SLAB_FLAG_NAMES, "0x10")


def _oracle_record(what: str, f: dict[str, str]) -> LogRecord | None:
    if what == "create":
        n = {k: int(f[k]) for k in _CREATE_INTS}
        return CreateRecord(f["name"], n["size"], n["align"], int(f["flags"], 0), f["ctor"] == "1",
                            n["useroffset"], n["usersize"], n["freeptr_offset"], f["via"])
    if what == "geometry":
        g = {k: int(f[k]) for k in _GEOMETRY_INTS}
        return GeometryRecord(name=f["name"], flags=int(f["flags"], 0), **g)
    if what == "alias":
        a = {k: int(f[k]) for k in _ALIAS_INTS}
        return AliasRecord(name=f["name"], target=f["target"], **a)
    return None


def parse_cache_log(lines: Iterable[str], path: str = "<caches.log>") -> list[LogRecord]:
    """The ``kslab-oracle:`` records of a cache log, in order (other lines are not the log's)."""
    out: list[LogRecord] = []
    for lineno, raw in enumerate(lines, 1):
        i = raw.find(_ORACLE)
        if i < 0:
            continue
        words = raw[i + len(_ORACLE):].split()
        if not words:
            raise SlubManifestError(path, lineno, "empty kslab-oracle line")
        f = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            rec = _oracle_record(words[0], f)
        except KeyError as e:
            raise SlubManifestError(path, lineno, f"{words[0]} line without {e.args[0]}=") from None
        except ValueError as e:
            raise SlubManifestError(path, lineno, f"bad number in {words[0]} line ({e})") from None
        if rec is not None:
            out.append(rec)
    return out


def _manifest_line(words: list[str], path: str, lineno: int) -> CreateRecord:
    if len(words) not in (5, 7, 8):
        raise SlubManifestError(path, lineno, "expected 'name size align flags ctor [useroffset usersize "
                                f"[freeptr_offset]]', got {len(words)} fields")
    name = words[0]
    try:
        size, align = int(words[1], 0), int(words[2], 0)
        extra = [int(w, 0) for w in words[5:]]
    except ValueError:
        raise SlubManifestError(path, lineno, "size, align, useroffset, usersize and freeptr_offset must be "
                                "numbers") from None
    if not 0 < size <= 1 << 31:
        raise SlubManifestError(path, lineno, f"impossible size {size}")
    if align < 0 or align & (align - 1):
        raise SlubManifestError(path, lineno, f"align {align} is not 0 or a power of two")
    try:
        flags = parse_flags(words[3])
    except ValueError as e:
        raise SlubManifestError(path, lineno, str(e)) from None
    if words[4] not in ("0", "1"):
        raise SlubManifestError(path, lineno, f"ctor must be 0 or 1, not {words[4]!r}")
    useroffset, usersize, freeptr = (extra + [0, 0, -1][len(extra):])[:3]
    return CreateRecord(name, size, align, flags, words[4] == "1", useroffset, usersize, freeptr, "create")


def read_slub_manifest(lines: list[str], path: str = "<manifest>") -> list[CreateRecord]:
    """The creations to replay: a cache log's ``via=create`` requests, or a text manifest's lines."""
    if any(_ORACLE in line for line in lines):
        return [r for r in parse_cache_log(lines, path) if isinstance(r, CreateRecord) and r.via == "create"]
    out = []
    for lineno, raw in enumerate(lines, 1):
        words = raw.split("#", 1)[0].split()
        if words:
            out.append(_manifest_line(words, path, lineno))
    return out


def boot_slub(cfg: SlubConfig, manifest: Iterable[CreateRecord]) -> Slub:
    """Boot SLUB and create the manifest's caches in order; a creation that fails leaves a dmesg line."""
    sl = kmem_cache_init(cfg)
    for c in manifest:
        kmem_cache_create(sl, c.name, c.size, c.align, c.flags, c.ctor, c.useroffset, c.usersize,
                          c.freeptr_offset)
    return sl
