"""``kslab replay``'s default way through a plain text trace: the columnar parser (trace/columns.py, compiled
when its C scanner is built, else pure Python) feeding the lean loop (trace/replay/columnar.py), with the same
results as ``Replayer.run`` over ``iter_events`` (``--no-fast-path`` takes the general code for every event;
benchmarks/replay_identity.py compares them)."""

from __future__ import annotations

import argparse

from ..mm.errors import KslabError
from ..trace.columns import iter_chunks
from ..trace.ftrace import ParseStats
from ..trace.replay import Replayer, ReplaySummary
from ..trace.replay.columnar import run_chunks
from .replay import MarkerWatch, replay_done
from .tracecheck import TraceCheck, not_text


def run_lean(rep: Replayer, args: argparse.Namespace, stats: ParseStats, watch: MarkerWatch, check: TraceCheck,
             t0: float, show: bool) -> tuple[ReplaySummary, ParseStats, float]:
    """``run_replay`` of ``args.trace`` through the lean loop: (summary, stats, seconds)."""
    chunks = check.wrap_chunks(iter_chunks(args.trace, skip_bad=args.skip_bad, stats=stats))
    try:
        summary = run_chunks(rep, chunks, on_mark=watch.mark if watch.watch else None)
    except KslabError as e:
        text = not_text(str(e))
        if text is None:
            raise
        raise ValueError(text) from None
    return summary, stats, replay_done(args, stats, watch, check, t0, show)
