"""calculate_order / calc_slab_order, min_partial and cpu_partial (mm/slub.c, 6.12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slubhelp import boot

from kslab.mm.config import MachineConfig
from kslab.mm.slub.geometry import (
    ENOSYS,
    calc_slab_order,
    calculate_order,
    get_order,
    oo_make,
    oo_objects,
    oo_order,
    order_objects,
)
from kslab.mm.slub.slab_common import kmem_cache_create
from kslab.mm.slub.slub_def import MAX_OBJS_PER_PAGE, SlubConfig


def cfg(cpus: int = 1, **options: object) -> SlubConfig:
    return SlubConfig(nr_cpu_ids=cpus, num_present_cpus=cpus, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cpus", "order", "objects"), [(1, 0, 8), (2, 1, 16), (3, 1, 16), (4, 1, 16),
                                                        (8, 2, 32)])
def test_min_objects_grow_with_the_cpus(cpus: int, order: int, objects: int) -> None:
    # 4 * (fls(cpus) + 1) objects of 512 bytes: 8, 12, 12, 16, 20
    o = calculate_order(cfg(cpus), 512)
    assert (o, order_objects(o, 512)) == (order, objects)


def test_one_present_cpu_falls_back_to_nr_cpu_ids() -> None:
    c = SlubConfig(nr_cpu_ids=4, num_present_cpus=1)
    assert calculate_order(c, 1024) == calculate_order(cfg(4), 1024) == 2


def test_slub_min_objects_overrides_the_cpus() -> None:
    assert calculate_order(cfg(4, slub_min_objects=1), 1024) == 0
    assert calculate_order(cfg(1, slub_min_objects=32), 1024) == 3


def test_waste_fraction_backs_off() -> None:
    # 1800 bytes: min_objects 8 -> order 2 at least; 16K % 1800 = 184 (<= 1/16 of 16K = 1024): order 2
    assert calculate_order(cfg(), 1800) == 2
    # no order up to 3 wastes <= 1/16 for 2100 bytes? 16K % 2100 = 1684 > 1024; 32K % 2100 = 1268 <= 2048
    assert calc_slab_order(2100, 2, 3, 16) == 3
    # when no order within max_order fits a fraction, the loop runs off the end: 16K % 5000 = 1384 > 1024,
    # 32K % 5000 = 2768 > 2048, so 1/16 fails up to order 3 and 1/8 takes order 2 (1384 <= 2048)
    assert calc_slab_order(5000, 2, 3, 16) == 4
    assert calc_slab_order(5000, 2, 3, 8) == 2
    assert calc_slab_order(3000, 3, 2, 16) == 3  # empty range: min_order comes back


def test_single_object_beyond_slub_max_order() -> None:
    assert calculate_order(cfg(), 262144) == 6  # order of one object, above slub_max_order 3
    assert calculate_order(cfg(), (4 << 20) + 8) == -ENOSYS  # more than MAX_PAGE_ORDER


def test_too_many_objects_per_page() -> None:
    # slab_min_order 7 on 8-byte objects would give 65536 objects: the order is cut below the limit
    c = cfg(slub_min_order=7)
    assert c.slub_max_order == 7  # slab_min_order= raises slab_max_order
    order = calculate_order(c, 8)
    assert order == get_order(8 * MAX_OBJS_PER_PAGE) - 1 == 5


def test_debug_guardpage_forces_order_zero() -> None:
    assert calculate_order(cfg(4, debug_guardpage_minorder=1), 1024) == 0


def test_oo_packing() -> None:
    x = oo_make(3, 1344)
    assert (oo_order(x), oo_objects(x)) == (3, 24)


def test_impossible_cache_is_refused() -> None:
    sl = boot()
    assert kmem_cache_create(sl, "huge", 8 << 20, 0, 0) is None
    assert sl.dmesg[-1] == "__kmem_cache_create_args(huge) failed with error -22"


@pytest.mark.parametrize(("size", "min_partial"), [(8, 5), (1024, 5), (4096, 6), (8192, 6), (262144, 9),
                                                   (4 << 20, 10)])
def test_min_partial(size: int, min_partial: int) -> None:
    sl = boot(slab_nomerge=True)
    s = kmem_cache_create(sl, "t", size, 0, 0)
    assert s is not None and s.min_partial == min_partial


@pytest.mark.parametrize(("size", "cpu_partial"), [(8, 120), (248, 120), (256, 52), (1016, 52), (1024, 24),
                                                   (4088, 24), (4096, 6), (262144, 6)])
def test_cpu_partial_by_size(size: int, cpu_partial: int) -> None:
    sl = boot(slab_nomerge=True)
    s = kmem_cache_create(sl, "t", size, 0, 0)
    assert s is not None and s.cpu_partial == cpu_partial
    assert s.cpu_partial_slabs == -(-(2 * cpu_partial) // oo_objects(s.oo))


def test_no_cpu_partial_without_the_option() -> None:
    sl = boot(CONFIG_SLUB_CPU_PARTIAL=False)
    s = sl.kmalloc_caches[0][6]
    assert s is not None and (s.cpu_partial, s.cpu_partial_slabs) == (0, 0)


def test_from_machine() -> None:
    c = SlubConfig.from_machine(MachineConfig.build(cpus=4, nodes=2))
    assert (c.nr_cpu_ids, c.num_present_cpus, c.nr_node_ids, c.slab_nomerge) == (4, 4, 2, False)


@given(st.integers(min_value=8, max_value=1 << 16), st.integers(min_value=1, max_value=64))
def test_order_properties(size: int, cpus: int) -> None:
    c = cfg(cpus)
    order = calculate_order(c, size)
    assert 0 <= order <= 10
    assert order_objects(order, size) >= 1
    if size <= 4096:  # an object fits in slub_max_order: the order stays within it
        assert order <= 3
    waste = (4096 << order) % size
    if order <= 3 and order > get_order(size):
        # above the minimum it had to reach, the order never wastes more than half the slab
        assert waste <= (4096 << order) // 2
