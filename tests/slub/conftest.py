"""Fixtures of the SLUB tests."""

from __future__ import annotations

import pytest
from slubhelp import boot

from kslab.mm.slub.slub_def import Slub


@pytest.fixture
def sl() -> Slub:
    """SLUB just booted on one CPU and one node."""
    return boot()
