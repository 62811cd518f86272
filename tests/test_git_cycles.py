"""A git source for a member of a build cycle: the commit's tree needs the cycle's own
backend to become an sdist.  The cycle is entered as usual (stage-0 wheels packed from
the tree, or seeds); the sdist is made in stage 1 with that environment, and the stages
then build from it to a fixed point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from scenario import Pkg, make_dists, write_static_index
from test_cycles import SELF, TWO, seed_store
from test_git_sources import _repo


def _index(tmp_path: Path, pkgs: list[Pkg]) -> str:
    return write_static_index(make_dists(pkgs, tmp_path / "dists"), pkgs).as_uri()


def _order(out: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}


def _cycle(out: Path) -> dict[str, Any]:
    (cycle,) = json.loads((out / "cycles.json").read_text())["cycles"]
    return dict(cycle)


def test_a_self_cycle_member_pinned_to_a_commit(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, SELF[0])
    index = _index(tmp_path, SELF[1:])
    args = ["user", f"selfback @ git+{repo.as_uri()}@{commit}"]
    run = run_bootstrap(*args, index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["selfback-1.0-py3-none-any.whl", "user-1.0-py3-none-any.whl"]
    cycle = _cycle(run.out)
    assert [m["name"] for m in cycle["members"]] == ["selfback"]
    assert cycle["broken_by"]["method"] == "source"
    assert cycle["fixed_point"] is True and cycle["status"] == "shipped"
    order = _order(run.out)
    made = order["selfback"]
    assert made["cycle"] == cycle["id"] and made["sdist_url"] == f"git+{repo.as_uri()}@{commit}"
    assert (run.out / "sdists" / made["sdist"]).is_file()
    assert not any(w["seed"] or w["stage0"] for w in made["build_env"])
    statement = json.loads(
        (run.out / "provenance" / "selfback-1.0-py3-none-any.whl.intoto.json").read_text())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"uri": f"git+{repo.as_uri()}@{commit}", "digest": {"gitCommit": commit},
            "annotations": {"role": "source"}} in deps
    # warm: the sdist is known by the commit, the wheels by their inputs
    shutil.move(repo, tmp_path / "gone")
    again = run_bootstrap(*args, index=index)
    assert again.code == 0, again.stderr
    assert all(b["reused"] for b in _order(again.out).values())
    assert {b["sha256"] for b in _order(again.out).values()} == \
        {b["sha256"] for b in order.values()}


def test_seeds_may_not_make_the_sdist_of_a_cycle_member_from_git(tmp_path, run_bootstrap):
    """The sdist is made once, before the stages: by a seed's code, it would carry that
    code past the fixed point into the shipped wheel.  Refused, saying why and what to
    do; the same cycle entered from source builds."""
    repo, commit = _repo(tmp_path, SELF[0])
    index = _index(tmp_path, SELF[1:])
    store = seed_store(tmp_path, SELF[:1])
    run = run_bootstrap("user", f"selfback @ git+{repo.as_uri()}@{commit}",
                        "--seeds", str(store), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "selfback 1.0 is made from a git commit" in err
    assert "seed wheels (selfback-1.0-py3-none-any.whl)" in err and "from source" in err
    assert "Traceback" not in run.stderr
    assert not (run.out / "sdists").exists() or not list((run.out / "sdists").glob("selfback*"))


@pytest.mark.parametrize("member", ["hostback", "hosthelper"])
def test_a_two_cycle_member_pinned_to_a_commit(tmp_path, run_bootstrap, member):
    """hostback (in-tree backend that imports hosthelper) and hosthelper (built by
    hostback): either one from a commit, named by a settings table."""
    pkg = next(p for p in TWO if p.name == member)
    repo, commit = _repo(tmp_path, pkg)
    index = _index(tmp_path, [p for p in TWO if p.name != member])
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[packages."{member}==1.0"]\n'
                        f'source = {{ git = "{repo.as_uri()}", rev = "{commit}" }}\n')
    run = run_bootstrap("app", "--settings", str(settings), index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["app-1.0-py3-none-any.whl", "hostback-1.0-py3-none-any.whl",
                          "hosthelper-1.0-py3-none-any.whl"]
    cycle = _cycle(run.out)
    assert {m["name"] for m in cycle["members"]} == {"hostback", "hosthelper"}
    assert cycle["fixed_point"] is True and cycle["status"] == "shipped"
    order = _order(run.out)
    assert order[member]["sdist_url"] == f"git+{repo.as_uri()}@{commit}"
    assert all(not any(w["seed"] or w["stage0"] for w in b["build_env"])
               for b in order.values())
