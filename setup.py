"""The optional compiled line scanner (kslab.trace._cscan): built when a C compiler is there, skipped
(optional=True) when not, in which case kslab.trace.columns uses its pure-Python engine.  Everything else
is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kslab.trace._cscan", ["src/kslab/trace/_cscan.c"], optional=True,
                             extra_compile_args=["-O2"])])
