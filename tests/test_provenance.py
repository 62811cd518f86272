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


def test_the_reader_gives_back_what_the_writer_wrote(serve_index, run_bootstrap) -> None:
    """read_statement, the one reader, on every statement of a run with a cycle: the
    subject, sdist, index, policy, build environment and cycle are those recorded; and
    what is not a statement of wheelstrap's is refused with the reason."""
    import pytest

    from wheelstrap.store.provenance import BadStatement, read_statement

    index = serve_index([*TWO, Pkg("lib")])
    run = run_bootstrap("app", "lib", index=index.url)
    assert run.code == 0, run.stderr
    builds = {b["wheel"]: b for b in
              json.loads((run.out / "build-order.json").read_text())["builds"]}
    members = set()
    for path in sorted((run.out / "provenance").glob("*.intoto.json")):
        s = read_statement(path.read_bytes())
        b = builds[s.subject]
        assert path.name == f"{s.subject}.intoto.json"
        assert (s.subject_sha256, s.sdist_sha256) == (b["sha256"], b["sdist_sha256"])
        assert s.index == index.url and s.policy["sandbox"] in ("bubblewrap", "none")
        assert s.chained_sdist and s.git is None and not s.prebuilt
        assert [(e.filename, e.sha256) for e in s.env] == \
            [(w["filename"], w["sha256"]) for w in b["build_env"]]
        if s.cycle is not None:
            members.update(s.cycle_members)
    assert members == {"hostback", "hosthelper"}
    doc = json.loads(next((run.out / "provenance").glob("*.intoto.json")).read_text())
    doc["subject"][0]["digest"]["sha256"] = "ABC"
    with pytest.raises(BadStatement, match="the subject's digest is not a sha256"):
        read_statement(json.dumps(doc))
    with pytest.raises(BadStatement, match="not JSON"):
        read_statement(b"{")
    doc["subject"][0]["digest"]["sha256"] = "0" * 64
    assert read_statement(json.dumps(doc)).subject_sha256 == "0" * 64
    del doc["predicate"]["buildDefinition"]["externalParameters"]["buildPolicy"]
    with pytest.raises(BadStatement, match="buildPolicy"):
        read_statement(json.dumps(doc))
