"""Provenance statements are deterministic: the same build inputs give the same bytes,
built now or reused, and a warm run rewrites none of them."""

from __future__ import annotations

import json

from scenario import Pkg
from test_cycles import TWO


def test_a_warm_run_gives_and_leaves_the_same_statements(serve_index, run_bootstrap) -> None:
    # a build cycle entered from source (its members' statements carry the cycle's
    # report), and a package built with it outside the cycle
    index = serve_index([*TWO, Pkg("lib")])
    cold = run_bootstrap("app", "lib", index=index.url)
    assert cold.code == 0, cold.stderr
    statements = sorted((cold.out / "provenance").glob("*.intoto.json"))
    assert len(statements) == 4
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in statements}
    for p in statements:
        internal = json.loads(p.read_text())["predicate"]["buildDefinition"][
            "internalParameters"]
        assert "reused" not in internal  # a fact of the run, not of the build
    warm = run_bootstrap("app", "lib", index=index.url, out=cold.out)
    assert warm.code == 0, warm.stderr
    builds = json.loads((warm.out / "build-order.json").read_text())["builds"]
    assert builds and all(b["reused"] for b in builds if b["cycle"] is None)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in sorted((warm.out / "provenance").glob("*.intoto.json"))}
    assert after == before  # the same bytes, and not even written again
