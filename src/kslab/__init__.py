"""kslab: the Linux 5.10 SLAB allocator (mm/slab.c) as an executable Python model."""

__version__ = "0.1.0"
