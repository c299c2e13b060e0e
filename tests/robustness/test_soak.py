"""A small version of the soak test (``python -m kslab.tools.soak``, docs/robustness.md): random workloads on
random machines (1..8 CPUs, 1..4 nodes, debug on/off, init_on_free, 64M machines that run out of memory), with
Kernel.check(), memory and object conservation checked every 1,000 operations."""

from __future__ import annotations

import contextlib
import io
import random

from kslab.mm.config import MachineConfig
from kslab.tools import soak


def test_soak_20k_operations() -> None:
    stats = soak.run(20_000, seed=3, segment=2_500, check_every=1_000)
    assert stats.ops == 20_000 and stats.segments == 8
    assert stats.checks == 8 * (2 + 2)  # 2 periodic ones, one at the end, one after finish() per machine
    assert sum(stats.by_op.values()) == 20_000


def test_out_of_memory_is_null_not_an_exception() -> None:
    """A 64M machine asked for 4M objects until it has no more: NULL, the checks still pass."""
    w = soak.Workload(MachineConfig.build(cpus=2, mem="64M"), random.Random(1), soak.SoakStats())
    for _ in range(40):
        w.step("pressure")
    assert w.stats.failed["pressure"] > 0
    w.check()
    w.finish()


def test_soak_main_prints_its_figures() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert soak.main(["--ops", "2000", "--seed", "5", "--segment", "1000", "--check-every", "500"]) == 0
    text = out.getvalue()
    assert "soak: 2,000 operations in 2 segments" in text and text.rstrip().endswith("out of memory answered with NULL")
