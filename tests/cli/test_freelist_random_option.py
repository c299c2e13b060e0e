"""--freelist-random and --random-seed reach the machine: the boot's kcalloc'd random_seq arrays show in
the kmalloc caches' counts, and a seed repeats exactly."""

from __future__ import annotations

from collections import Counter

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab.kmalloc import kmalloc_slab


def _slabinfo(capsys, *opts: str) -> str:  # type: ignore[no-untyped-def]
    assert main(["slabinfo", *opts]) == 0
    return capsys.readouterr().out


def _active(text: str) -> dict[str, int]:
    out = {}
    for ln in text.splitlines():
        f = ln.split()
        if len(f) > 2 and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def test_the_option_reaches_the_machine(capsys):
    off = _slabinfo(capsys)
    on = _slabinfo(capsys, "--freelist-random")
    assert _slabinfo(capsys, "--random-seed", "5") == off  # the seed alone changes nothing
    # kmem_cache_init_late kcallocs num * sizeof(unsigned int) bytes per cache of 2+ objects per slab
    k = Kernel(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True))
    want: Counter[str] = Counter()
    for c in k.slab_caches:
        if c.num >= 2:
            holder = kmalloc_slab(k, 4 * c.num, 0)
            assert holder is not None and not isinstance(holder, int)
            want[holder.name] += 1
    a_on, a_off = _active(on), _active(off)
    got = Counter({name: a_on[name] - a_off.get(name, 0) for name in a_on if a_on[name] != a_off.get(name, 0)})
    # (active_objs also counts the objects a refill moved into the per-CPU arrays: at least that many)
    assert set(got) == set(want) and sum(want.values()) > 20
    assert all(got[name] >= n for name, n in want.items())
    assert _slabinfo(capsys, "--freelist-random", "--random-seed", "3") == \
        _slabinfo(capsys, "--freelist-random", "--random-seed", "3")
