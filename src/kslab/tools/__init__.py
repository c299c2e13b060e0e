"""Developer tools run by hand (not by the default test run): ``python -m kslab.tools.soak`` (long random
workloads with the invariant checker) and ``python -m kslab.tools.fuzz`` (adversarial traces through the parser,
the replay and the CLI).  See docs/robustness.md."""
