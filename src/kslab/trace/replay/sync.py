"""The sync with a real /proc/slabinfo: placeholders for missing objects, slabs grown or released, the
shared and per-CPU arrays matched, and the re-packing of objects spread over more slabs than the kernel's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...mm.kernel import Kernel
from ...mm.slab.adopt import array_push, free_objects, free_oldest, move_obj, release_free_slab
from ...mm.slab.grow import cache_grow_begin, cache_grow_end
from ...mm.slab.node import drain_freelist
from ...mm.slab_def import KmemCache
from ...mm.slabinfo import get_slabinfo
from ..slabinfo_parse import parse_slabinfo
from .options import ReplayError
from .placeholders import Placeholders, objects_in_arrays
from .ptrmap import PointerMap


class Sync:
    """Makes the model agree with a real /proc/slabinfo (``path``); ``synced`` once it did (or when there
    is nothing to sync with)."""

    def __init__(self, k: Kernel, ptrs: PointerMap, placeholders: Placeholders, path: str | None,
                 synced: bool) -> None:
        self.k = k
        self.ptrs = ptrs
        self.placeholders = placeholders
        self.path = path
        self.synced = synced

    def sync(self) -> dict[str, Any] | None:
        """Make the model agree with the real /proc/slabinfo: missing objects become placeholders,
        missing slabs are grown empty, surplus empty slabs are released.  Returns the report (None when
        there is no file to agree with)."""
        self.synced = True
        path = self.path
        if not path:
            return None
        try:
            real = parse_slabinfo(Path(path).read_text())
        except OSError as e:
            raise ReplayError(f"{path}: cannot read: {e.strerror}") from None
        k = self.k
        report: dict[str, Any] = {"caches": 0, "placeholders": 0, "slabs_grown": 0, "slabs_released": 0,
                                  "surplus_objects": 0, "unknown_caches": []}
        for name, row in real.items():
            c = k.find_cache(name)
            if c is None:
                report["unknown_caches"].append(name)
                continue
            report["caches"] += 1
            self._sync_objects(c, row, report)
            self._sync_slabs(c, row, report)
        return report

    def _sync_objects(self, c: KmemCache, row: dict[str, int], report: dict[str, Any]) -> None:
        """The cache's active objects (and shared arrays' fill) as the kernel's row says."""
        pool = self.placeholders.pool(c)
        # /proc/slabinfo gives the shared arrays' fill (sharedavail): match it first
        mine = get_slabinfo(c)
        if "sharedavail" in row and mine.sharedavail != row["sharedavail"]:
            report["shared_adjusted"] = report.get("shared_adjusted", 0) + abs(
                self._match_shared(c, pool, row["sharedavail"] - mine.sharedavail))
        mine = get_slabinfo(c)
        deficit = row["active_objs"] - mine.active_objs
        made = self.placeholders.make(c, deficit, sync=True)
        pool.extend(made)
        report["placeholders"] += len(made)
        if deficit < 0 and pool:
            # objects of unknown identity (see Placeholders.align_array) that the kernel does not count:
            # free them
            release = min(-deficit, len(pool))
            self._release_pool(c, pool, release)
            report["pool_released"] = report.get("pool_released", 0) + release
            deficit += release
        if deficit < 0:
            # more objects sit in the model's per-CPU arrays than the kernel counts as active: the
            # kernel had given them back to their slabs; free the oldest entries, CPU by CPU
            released = self._drain_cpu_arrays(c, -deficit)
            report["array_objects_freed"] = report.get("array_objects_freed", 0) + released
            deficit += released
        if deficit < 0:
            report["surplus_objects"] += -deficit

    def _sync_slabs(self, c: KmemCache, row: dict[str, int], report: dict[str, Any]) -> None:
        """The cache's slabs as many as the kernel's row says: grown, released or re-packed."""
        k = self.k
        mine = get_slabinfo(c)
        extra = row["num_slabs"] - mine.num_slabs
        node = c.node[k.numa_node]
        if node is None:
            return
        while extra > 0:
            page = cache_grow_begin(c, c.allocflags | 0xCC0, k.numa_node)
            if page is None:
                break
            cache_grow_end(c, page)
            extra -= 1
            report["slabs_grown"] += 1
        # surplus slabs may be on any node: the local one first, then the others
        others = [n for n in c.node if n is not None and n is not node]
        for n in [node, *others]:
            if extra < 0:
                released = drain_freelist(c, n, -extra)
                report["slabs_released"] += released
                extra += released
        for n in [node, *others]:
            if extra < 0:
                # the counts agree but the model spreads its objects over more slabs: re-pack the
                # objects it knows only as kernel pointers (their slab in the kernel is unknown)
                packed = self._repack(c, n, -extra)
                report["slabs_repacked"] = report.get("slabs_repacked", 0) + packed
                extra += packed

    def _repack(self, cachep: KmemCache, n: Any, want: int) -> int:
        """Empty up to ``want`` of the emptiest partial slabs by moving their allocated objects (mapped
        kernel pointers and pool objects, never array objects) into free slots of fuller slabs, then
        release the emptied slabs.  Returns the number of slabs released."""
        k = self.k
        kmap, kcache = self.ptrs.kmap, self.ptrs.kcache
        off = cachep.obj_offset if k.debug else 0
        in_arrays = objects_in_arrays(cachep)
        owner: dict[int, int] = {m - off: kp for kp, m in kmap.items() if kcache.get(kp) is cachep}
        pool = self.placeholders.pool(cachep)
        pooled = {p - off for p in pool}
        partial = sorted(n.slabs_partial, key=lambda pg: pg.active)
        released = 0
        for donor in partial:
            if released >= want:
                break
            fl = donor.fl
            free_idx = set(fl[donor.active:cachep.num])
            objs = [donor.s_mem + i * cachep.size for i in range(cachep.num) if i not in free_idx]
            if any(o in in_arrays or (o not in owner and o not in pooled) for o in objs):
                continue
            room = sum(cachep.num - pg.active for pg in n.slabs_partial if pg is not donor)
            if room < len(objs):
                break
            for o in objs:
                target = next(pg for pg in n.slabs_partial if pg is not donor and pg.active < cachep.num)
                new = move_obj(cachep, n, target, o, donor.nid)
                if o in owner:
                    kp = owner.pop(o)
                    kmap[kp] = new + off
                    owner[new] = kp
                else:
                    pool[pool.index(o + off)] = new + off
                    pooled.discard(o)
                    pooled.add(new)
            if donor.active == 0 and donor.on_list is n.slabs_free:
                release_free_slab(cachep, n, donor)
                released += 1
            elif donor.on_list is None:
                released += 1  # free_block already trimmed it
        return released

    def _match_shared(self, cachep: KmemCache, pool: list[int], delta: int) -> int:
        """Grow (delta > 0, with pool objects of the array's node) or shrink (delta < 0, oldest entries
        back to their slabs) the shared arrays by ``delta`` objects in all; returns the change made."""
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        done = 0
        nodes = [n for n in cachep.node if n is not None and n.shared is not None]
        if delta < 0:
            for n in sorted(nodes, key=lambda n: -len(n.shared.entry)):  # type: ignore[union-attr]
                sh = n.shared
                assert sh is not None
                take = min(-delta - done, len(sh.entry))
                if take > 0:
                    free_oldest(cachep, sh, take, n.nid)
                    done += take
            return -done
        for n in nodes:
            sh = n.shared
            assert sh is not None
            i = len(pool) - 1
            while done < delta and i >= 0 and len(sh.entry) < sh.limit:
                page = k.page_of(pool[i] - off)
                if page is not None and page.nid == n.nid:
                    array_push(sh, pool.pop(i) - off, oldest=True)
                    done += 1
                i -= 1
        return done

    def _drain_cpu_arrays(self, cachep: KmemCache, count: int) -> int:
        """Give back up to ``count`` of the oldest per-CPU array objects to their slabs."""
        k = self.k
        done = 0
        for cpu, ac in sorted(enumerate(cachep.cpu_cache), key=lambda x: -len(x[1].entry)):
            take = min(count - done, len(ac.entry))
            if take <= 0:
                continue
            free_oldest(cachep, ac, take, k.topo.cpu_to_node[cpu])
            done += take
        return done

    def _release_pool(self, cachep: KmemCache, pool: list[int], count: int) -> None:
        """Give ``count`` pool objects back to their slabs (straight to the node, as free_block does)."""
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        by_node: dict[int, list[int]] = {}
        for _ in range(count):
            obj = pool.pop() - off
            page = k.page_of(obj)
            by_node.setdefault(page.nid if page is not None else k.numa_node, []).append(obj)
        for nid, objs in by_node.items():
            free_objects(cachep, objs, nid)
