"""A small, deterministic slice of the fuzz campaign (fuzz/fuzz_archives.py) in the suite:
for every archive and source-tree parser, random and mutated inputs end in a valid result
or in wheelstrap's own error; no internal error, no escape from the destination."""

from __future__ import annotations

import importlib.util
import random
import signal
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent.parent / "fuzz" / "fuzz_archives.py"
INPUTS = {"unpack_tar": 60, "unpack_zip": 60, "build_system": 200, "inspect": 150,
          "read_metadata": 80, "seeds": 150, "graph_cli": 150}


def _harness():
    spec = importlib.util.spec_from_file_location("fuzz_archives", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_archives"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("target", sorted(INPUTS))
def test_fuzz_slice(tmp_path, target):
    fz = _harness()
    old = signal.signal(signal.SIGALRM, fz._alarm)
    try:
        rng = random.Random(f"7-{target}")
        gen = fz.TARGETS[target](rng, tmp_path)
        tally = fz.Tally()
        while tally.tried < INPUTS[target]:
            blob, call = next(gen)
            # a generous per-input limit: this asserts "no hang", never a speed
            fz.run_one(tally, blob, call, 120.0)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not tally.internal, {k: (n, tally.repro[k][:300]) for k, n in tally.internal.items()}
    assert tally.escapes == 0, tally.escape_repro
    assert tally.hangs == 0
    assert tally.ok + tally.clean == INPUTS[target]
