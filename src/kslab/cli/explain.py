"""kslab explain: set up a scenario with the kernel's own rules, then narrate one kfree or kmalloc
step by step: which function ran, which branch it took, and the numbers that decided it."""

from __future__ import annotations

import argparse
import json
import sys

from ..report.narrate import LANGS, render_explanation, render_step, step_depths
from ..scenarios import SCENARIOS, Explanation, ScenarioError, run_scenario
from .common import add_machine_options, build_machine

EXAMPLES = """examples:
  kslab explain --list
  kslab explain --scenario flush-free-block
  kslab explain --scenario flush-shared --lang zh
  kslab explain --scenario alien-overflow --cpus 4 --nodes 2 --json
  kslab explain --scenario flush-free-block --size 64 --full

Without --cpus/--nodes a scenario boots the machine it needs (flush-shared: 2 CPUs; alien and
alien-overflow: 2 CPUs on 2 nodes; the others: 1 CPU).  The scenario runs the kernel's own
allocations and frees until the branch it is named after is taken, and narrates that operation.
Golden outputs: tests/golden/explain/ (KSLAB_UPDATE_GOLDEN=1 pytest tests/report tests/cli).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", help="narrate one kfree/kmalloc: functions, branches and the numbers behind them",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_machine_options(p)
    # None = "not given": a scenario then picks the machine it needs (e.g. 2 CPUs for a shared array)
    p.set_defaults(cpus=None, nodes=None)
    p.add_argument("--scenario", metavar="NAME", help="the scenario to explain (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios with a one-line description")
    p.add_argument("--lang", choices=LANGS, default="en", help="narration language (default en)")
    p.add_argument("--size", type=int, metavar="BYTES", help="kmalloc size the scenario uses (default per scenario)")
    p.add_argument("--full", action="store_true", help="show every object of a long free_block loop")
    p.add_argument("--json", action="store_true", help="print the recorded steps as JSON")
    p.set_defaults(func=run)


def list_scenarios(lang: str) -> str:
    width = max(len(n) for n in SCENARIOS)
    return "".join(f"{name:{width}}  {sc.summary[lang]}\n" for name, sc in SCENARIOS.items())


def explain_scenario(args: argparse.Namespace) -> Explanation:
    """Boot the machine the options describe (with the scenario's defaults) and run the scenario."""
    sc = SCENARIOS.get(args.scenario)
    if sc is None:
        raise ScenarioError(f"unknown scenario {args.scenario!r}; choose from {', '.join(SCENARIOS)}")
    margs = argparse.Namespace(**vars(args))
    if args.topology:
        margs.cpus = args.cpus or 1
        margs.nodes = args.nodes or 1
    else:
        margs.nodes = args.nodes if args.nodes is not None else sc.nodes
        margs.cpus = args.cpus if args.cpus is not None else max(sc.cpus, margs.nodes)
    if args.size is not None and args.size <= 0:
        raise ValueError(f"--size {args.size}: must be a positive number of bytes")
    k = build_machine(margs)
    return run_scenario(sc.name, k, args.size)


def run(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(list_scenarios(args.lang))
        return 0
    if not args.scenario:
        raise ValueError("give --scenario NAME (or --list to see them)")
    ex = explain_scenario(args)
    if args.json:
        doc = ex.as_dict()
        for d, depth, st in zip(doc["steps"], step_depths(ex.steps), ex.steps, strict=True):
            d["depth"] = depth
            d["text"] = render_step(st.func, st.key, st.values, args.lang)
        json.dump(doc, sys.stdout, indent=1, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_explanation(ex, args.lang, summary=SCENARIOS[ex.scenario].summary[args.lang],
                                            full=args.full))
    return 0
