"""The replay of Linux 6.12 SLUB traces through the SLUB model (:mod:`.engine`) and its comparison with the
captures (:mod:`.fidelity`)."""
