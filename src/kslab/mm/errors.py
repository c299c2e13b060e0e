"""Errors raised by the model core.

The kernel's ordinary failures (NULL, -ENOMEM, -EINVAL) stay return values.  Exceptions are for
what the kernel itself would not survive (``BUG()``) and for invalid model configuration.
"""

from __future__ import annotations


class KslabError(Exception):
    """Base of every error kslab raises on purpose."""


class ConfigError(KslabError, ValueError):
    """An impossible machine or option (e.g. 3 CPUs on 4 nodes)."""


class KernelBug(KslabError):
    """The kernel would have hit BUG(): the message is the kernel's.  The machine stays inspectable."""

    def __init__(self, message: str, *, function: str = "", cache: str = "", objp: int = 0) -> None:
        super().__init__(message)
        self.function = function
        self.cache = cache
        self.objp = objp


class SlabCorruptionError(KslabError):
    """An invariant of the model does not hold (raised by ``check()``)."""
