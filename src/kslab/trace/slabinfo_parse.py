"""Read a /proc/slabinfo (version 2.1, with or without statistics) into numbers."""

from __future__ import annotations

from ..mm.errors import KslabError

COLUMNS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")
SECTIONS = {
    "tunables": ("limit", "batchcount", "sharedfactor"),
    "slabdata": ("active_slabs", "num_slabs", "sharedavail"),
    "globalstat": ("listallocs", "maxobjs", "grown", "reaped", "error", "maxfreeable", "nodeallocs",
                   "remotefrees", "alienoverflow"),
    "cpustat": ("allochit", "allocmiss", "freehit", "freemiss"),
}


class SlabinfoParseError(KslabError):
    pass


def parse_slabinfo(text: str, path: str = "<slabinfo>") -> dict[str, dict[str, int]]:
    """{cache name: {column: value}} in file order."""
    out: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("slabinfo -", "#")):
            continue
        parts = line.split(":")
        head = parts[0].split()
        if len(head) < 6:
            raise SlabinfoParseError(f"{path}:{lineno}: expected 'name active num objsize objperslab pages'")
        try:
            values = dict(zip(COLUMNS, (int(x) for x in head[-5:]), strict=True))  # always 5 of each
            for part in parts[1:]:
                words = part.split()
                if not words:
                    continue
                keys = SECTIONS.get(words[0])
                if keys is None:
                    raise SlabinfoParseError(f"{path}:{lineno}: unknown section {words[0]!r}")
                values.update(zip(keys, (int(x) for x in words[1:]), strict=False))
        except ValueError:
            raise SlabinfoParseError(f"{path}:{lineno}: a column is not a number") from None
        out[" ".join(head[:-5])] = values
    return out
