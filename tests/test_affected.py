"""`wheelstrap affected`: which shipped wheels had a package anywhere in their
build-environment closure (a chain three deep, a seedless cycle, a seed), and `--rebuild`
without it: the invocation build-order.json records run again (constraints, hashes and
locks, policies, settings), or for an older output what can be recovered of it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import tomli_w
from click.testing import CliRunner, Result
from scenario import BACKEND_SOURCE, Pkg, make_sdist
from test_cycles import SELF, TWO, seed_store

from wheelstrap.ui.cli import main

# lowback's own in-tree backend puts the version of xzlib it was built with into lowback's
# wheel, and lowback, as a backend, passes it on into the wheels it builds: a compromised
# xzlib in lowback's build environment changes the bytes of every build downstream of it
TRACE = ("\nimport xzlib as _xz\n"
         "_INJECT.append(('lowback/built_with.txt', _xz.VERSION))\n")
PASS_ON = ("\nimport os as _os\n"
           "with open(_os.path.join(_os.path.dirname(__file__), 'built_with.txt')) as _f:\n"
           "    _INJECT.append(('built_by_lowback.txt', _f.read()))\n")


def xzlib(version: str) -> Pkg:
    return Pkg("xzlib", version, code=f"VERSION = {version!r}\n")


CHAIN = [
    xzlib("1.0"),
    Pkg("lowback", build_requires=["xzlib"], code=BACKEND_SOURCE + PASS_ON,
        extra_files={"_backend/tinybackend.py": BACKEND_SOURCE + TRACE}),
    Pkg("midback", provides_backend=True, backend="lowback", build_requires=["lowback"]),
    Pkg("chainapp", backend="midback", build_requires=["midback"], deps=["bystander"]),
    Pkg("bystander"),  # a runtime dependency of chainapp, built by its own in-tree backend
]


def affected(*args: str) -> Result:
    return CliRunner().invoke(main, ["affected", *args])


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _chains(doc: dict[str, Any]) -> dict[str, list[list[tuple[str, str, str]]]]:
    """name -> the chains of its hits, each as (name, version, kind) per link."""
    return {a["name"]: [[(w["name"], w["version"], w["kind"]) for w in h["chain"]]
                        for h in a["hits"]] for a in doc["affected"]}


def test_affected_follows_chains_cycle_stages_and_seeds(serve_index, run_bootstrap, tmp_path):
    index = serve_index([*CHAIN, *TWO, *SELF])
    store = seed_store(tmp_path, SELF[:1])
    run = run_bootstrap("chainapp", "app", "user", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    out = str(run.out)

    # three deep, plain
    result = affected(out, "xzlib<=1.0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("4 of ") and "xzlib<=1.0" in lines[0]
    assert ("  chainapp 1.0 <- build-env midback 1.0 <- build-env lowback 1.0 "
            "<- build-env xzlib 1.0") in lines
    assert "  xzlib 1.0 (is itself a match)" in lines
    assert not any(n in result.stdout for n in ("bystander", "hostback", "selfback", "user"))
    # and as JSON
    doc = _json(affected(out, "XZLib<=1.0", "--json"))
    chains = _chains(doc)
    assert set(chains) == {"chainapp", "midback", "lowback", "xzlib"}
    assert chains["chainapp"] == [[("chainapp", "1.0", "built"), ("midback", "1.0", "built"),
                                   ("lowback", "1.0", "built"), ("xzlib", "1.0", "built")]]
    assert chains["xzlib"] == [[("xzlib", "1.0", "built")]]
    (itself,) = [a for a in doc["affected"] if a["name"] == "xzlib"]
    assert itself["hits"][0]["itself"] is True
    assert [(m["name"], m["version"]) for m in doc["matching"]] == [("xzlib", "1.0")]
    assert doc["warnings"] == []
    # a specifier that excludes the version found matches nothing
    none = affected(out, "xzlib>1.0")
    assert none.exit_code == 0 and none.stdout.startswith("no shipped wheel had xzlib>1.0")

    # a cycle entered through a stage-0 wheel: only the build environments of its stage
    # builds (cycles.json) lead from the shipped wheels to the stage-0 wheel
    doc = _json(affected(out, "hosthelper", "--json"))
    chains = _chains(doc)
    assert set(chains) == {"app", "hostback", "hosthelper"}
    assert [("app", "1.0", "built"), ("hostback", "1.0", "built"),
            ("hosthelper", "1.0", "stage0")] in chains["app"]
    assert any(c[-1][2] == "stage0" for c in chains["hostback"])
    kinds = {m["kind"] for m in doc["matching"]}
    assert kinds == {"built", "stage0"}
    cycles_doc = json.loads((run.out / "cycles.json").read_text())
    for cycle in cycles_doc["cycles"]:
        for stage in cycle["stage_wheels"]:
            assert all("build_env" in w for w in stage["wheels"].values())

    # a seed: the seeded self-cycle and the package built with it
    doc = _json(affected(out, "selfback==1.0", "--json"))
    chains = _chains(doc)
    assert set(chains) == {"selfback", "user"}
    assert [("user", "1.0", "built"), ("selfback", "1.0", "built"),
            ("selfback", "1.0", "seed")] in chains["user"]
    plain = affected(out, "selfback").stdout
    assert "user 1.0 <- build-env selfback 1.0 <- build-env selfback 1.0 (seed)" in plain

    # an output of an older wheelstrap, whose cycles.json lacks the stage wheels' build
    # environments: the stage-0 wheel is out of reach, and it is said
    for cycle in cycles_doc["cycles"]:
        for stage in cycle["stage_wheels"]:
            for w in stage["wheels"].values():
                del w["build_env"]
    (run.out / "cycles.json").write_text(json.dumps(cycles_doc))
    older = affected(out, "hosthelper", "--json")
    doc = _json(older)
    assert {m["kind"] for m in doc["matching"]} == {"built"}
    assert "does not record the build environments of the stage wheels" in older.stderr


def test_affected_refuses_bad_input_with_clear_errors(tmp_path):
    missing = affected(str(tmp_path / "nowhere"), "xzlib")
    assert missing.exit_code == 1
    assert "build-order.json does not exist" in missing.output
    assert "Traceback" not in missing.output
    out = tmp_path / "out"
    out.mkdir()
    order = {"schema": "wheelstrap-build-order", "version": 1, "target": {},
             "builds": [{"name": "a", "version": "1.0", "wheel": "a-1.0-py3-none-any.whl",
                         "sha256": "0" * 64, "reused": False,
                         "build_env": [{"filename": "b-1.0-py3-none-any.whl",
                                        "sha256": "1" * 64, "seed": "no"}]}]}
    (out / "build-order.json").write_text(json.dumps(order))
    bad = affected(str(out), "b")
    assert bad.exit_code == 1
    assert "is not a valid wheelstrap-build-order v1 document" in bad.output
    assert "builds[0].build_env[0].seed" in bad.output
    order["builds"][0]["build_env"][0]["seed"] = False
    (out / "build-order.json").write_text(json.dumps(order))
    cycles = {"schema": "wheelstrap-cycles", "version": 1, "cycles": [
        {"id": "cycle-1", "members": [{"name": "a", "version": "1.0"}],
         "stage_wheels": [{"stage": 1, "wheels": {"a 1.0": {"wheel": 3}}}]}]}
    (out / "cycles.json").write_text(json.dumps(cycles))
    bad = affected(str(out), "b")
    assert bad.exit_code == 1 and "not a valid wheelstrap-cycles v1 document" in bad.output
    assert 'stage_wheels[0].wheels["a 1.0"].wheel' in bad.output
    (out / "cycles.json").unlink()
    # an unknown field is fine; the environment wheel's origin is not recorded: said
    order["builds"][0]["new_field"] = 1
    (out / "build-order.json").write_text(json.dumps(order))
    ok = affected(str(out), "b")
    assert ok.exit_code == 0, ok.output
    assert "a 1.0 <- build-env b 1.0 (origin not recorded)" in ok.stdout
    assert "recorded nowhere else" in ok.stderr
    alone = affected(str(out), "b", "--index-url", "http://127.0.0.1:1/simple/")
    assert alone.exit_code == 1 and "--index-url only apply to --rebuild" in alone.output
    for query in ("b @ https://example.org/b.whl", "b; python_version > '3'", "b<<1"):
        bad = affected(str(out), query)
        assert bad.exit_code == 1 and "hint:" in bad.output, query


def _builds(out: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}


def test_rebuild_rebuilds_exactly_the_affected_wheels_without_the_culprit(
        serve_index, run_bootstrap):
    index = serve_index(CHAIN)
    run = run_bootstrap("chainapp", index=index.url)
    assert run.code == 0, run.stderr
    first = _builds(run.out)
    old_xz = first["xzlib"]["sha256"]

    # no other version of xzlib: nothing can be rebuilt, and the error says why
    stuck = affected(str(run.out), "xzlib<=1.0", "--rebuild")
    assert stuck.exit_code == 1
    assert "Cannot rebuild without xzlib 1.0" in stuck.output
    assert "no other version of it" in stuck.output and "Traceback" not in stuck.output
    assert _builds(run.out) == first

    make_sdist(xzlib("2.0"), index.folder)  # the fixed release
    fixed = affected(str(run.out), "xzlib<=1.0", "--rebuild", "-q")
    assert fixed.exit_code == 0, fixed.output
    after = _builds(run.out)
    assert after["xzlib"]["version"] == "2.0"
    # the exclusion joins the run's invocation; the other packages were held for the
    # rebuild only
    assert _invocation(run.out)["constraints"] == ["xzlib!=1.0"]
    rebuilt = {n for n, b in after.items() if not b["reused"]}
    assert rebuilt == {"xzlib", "lowback", "midback", "chainapp"}
    assert after["bystander"]["reused"] is True
    assert after["bystander"]["sha256"] == first["bystander"]["sha256"]
    for name in ("lowback", "midback"):  # what xzlib 1.0 touched came out different
        assert after[name]["sha256"] != first[name]["sha256"], name
    for b in after.values():
        assert old_xz not in {w["sha256"] for w in b["build_env"]}
        assert not any(w["filename"].startswith("xzlib-1.0") for w in b["build_env"])
    assert any(w["filename"].startswith("xzlib-2.0") for w in after["lowback"]["build_env"])
    assert "rebuilt 4 wheel(s):" in fixed.stdout
    # midback builds with a backend that leaves no trace: chainapp was built again (its
    # build environment changed) and came out the same
    assert ("  chainapp 1.0 (chainapp-1.0-py3-none-any.whl), the same bytes as before"
            in fixed.stdout)
    assert "  lowback 1.0 (lowback-1.0-py3-none-any.whl)\n" in fixed.stdout
    assert "bystander" not in fixed.stdout.split("rebuilt 4 wheel(s):")[1]
    events = [json.loads(line) for line in
              (run.out / "events.jsonl").read_text().splitlines()]
    built = {e["node"] for e in events if e["event"] == "finished" and e["phase"] == "build"}
    reused = {e["node"] for e in events if e["event"] == "reused"}
    assert built == {"xzlib 2.0", "lowback 1.0", "midback 1.0", "chainapp 1.0"}
    assert reused == {"bystander 1.0"}
    started = next(e for e in events if e["event"] == "run-started")
    assert started["targets"] == ["chainapp"]
    # the output no longer holds xzlib 1.0 anywhere in a shipped wheel's closure
    again = affected(str(run.out), "xzlib<=1.0")
    assert again.exit_code == 0 and again.stdout.startswith("no shipped wheel")
    doc = _json(affected(str(run.out), "xzlib<=1.0", "--rebuild", "--json"))
    assert (doc["affected"], doc["rebuilt"], doc["still_affected"]) == ([], [], [])
    assert _builds(run.out) == after  # nothing to rebuild: not even a run


def test_a_failed_rebuild_says_why_and_leaves_the_question_answerable(
        serve_index, run_bootstrap):
    index = serve_index(CHAIN)
    run = run_bootstrap("chainapp", index=index.url)
    assert run.code == 0, run.stderr
    first = _builds(run.out)
    # the fixed release needs a newer bystander than the run holds
    make_sdist(Pkg("xzlib", "2.0", code="VERSION = '2.0'\n", deps=["bystander>=2"]),
               index.folder)
    make_sdist(Pkg("bystander", "2.0"), index.folder)
    held = affected(str(run.out), "xzlib==1.0", "--rebuild", "-q")
    assert held.exit_code == 1
    assert "The constraints on bystander (==1.0)" in held.output and "--no-hold" in held.output
    assert "were put back as the run wrote them" in held.output
    assert _builds(run.out) == first  # the question can be asked again
    free = affected(str(run.out), "xzlib==1.0", "--rebuild", "--no-hold", "-q")
    assert free.exit_code == 0, free.output
    after = _builds(run.out)
    assert (after["xzlib"]["version"], after["bystander"]["version"]) == ("2.0", "2.0")
    assert not affected(str(run.out), "xzlib==1.0", "--json").stdout.count('"hits"')


def _shown(out: Path) -> dict[str, bytes]:
    """The documents, provenance, wheels and index pages of ``out``, by path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] in (
                "provenance", "wheels", "build-order.json", "graph.json", "cycles.json",
                "failures.json", "constraints.txt", "pylock.toml", "sbom.cdx.json",
                "report.html")}


def test_a_rebuild_that_fails_after_shipping_leaves_the_output_as_it_was(
        serve_index, run_bootstrap):
    index = serve_index(CHAIN)
    run = run_bootstrap("chainapp", index=index.url)
    assert run.code == 0, run.stderr
    before = _shown(run.out)
    assert "pylock.toml" in before and "wheels/simple/xzlib/index.html" in before
    # the fixed release builds and ships, and then breaks the build of lowback
    make_sdist(Pkg("xzlib", "2.0", code="raise ImportError('xzlib 2.0 is broken')\n"),
               index.folder)
    failed = affected(str(run.out), "xzlib==1.0", "--rebuild", "-q")
    assert failed.exit_code == 1
    assert "Building lowback 1.0 failed" in failed.output
    assert "were put back as the run wrote them" in failed.output
    assert _shown(run.out) == before  # not a file more, less or different
    assert (run.out / "logs" / "xzlib-2.0.log").is_file()  # the attempt's own record
    assert not (run.out / ".wheelstrap" / "snapshot").exists()
    again = affected(str(run.out), "xzlib==1.0", "--json")
    assert again.exit_code == 0 and '"hits"' in again.stdout


def _invocation(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "build-order.json").read_text())["invocation"]
    return doc


def test_rebuild_runs_the_recorded_invocation_again(serve_index, run_bootstrap, tmp_path):
    index = serve_index(CHAIN)
    cons = tmp_path / "cons.txt"
    cons.write_text("bystander<2\n")
    args = ("chainapp", "-c", str(cons), "--strict", "--no-source-bootstrap")
    run = run_bootstrap(*args, index=index.url)
    assert run.code == 0, run.stderr
    first = _invocation(run.out)
    assert first["requirements"] == ["chainapp"]
    assert first["constraints"] == ["bystander<2"]
    assert (first["run"]["strict"], first["run"]["source_bootstrap"]) == (True, False)
    assert first["index_url"] == index.url and first["settings"] is None
    assert first["release_age"] == {"min_days": None, "max_days": None, "as_of": None}
    again = run_bootstrap(*args, index=index.url)  # the same invocation records the same
    assert again.code == 0, again.stderr
    assert _invocation(run.out) == first
    before = _builds(run.out)

    # the -c file is gone and bystander 2.0 is out: the rebuild still applies bystander<2,
    # with --strict and --no-source-bootstrap, without the file
    cons.unlink()
    make_sdist(xzlib("2.0"), index.folder)
    make_sdist(Pkg("bystander", "2.0"), index.folder)
    fixed = affected(str(run.out), "xzlib<=1.0", "--rebuild", "--no-hold", "-q")
    assert fixed.exit_code == 0, fixed.output
    assert "does not record how the run was invoked" not in fixed.output
    after = _builds(run.out)
    assert after["xzlib"]["version"] == "2.0"
    assert after["bystander"]["version"] == "1.0" and after["bystander"]["reused"] is True
    assert after["bystander"]["sha256"] == before["bystander"]["sha256"]
    second = _invocation(run.out)
    assert second == {**first, "constraints": ["bystander<2", "xzlib!=1.0"]}


def test_rebuild_of_an_older_output_recovers_what_it_can_and_says_what_not(
        serve_index, run_bootstrap):
    index = serve_index(CHAIN)
    run = run_bootstrap("chainapp", "--max-stages", "2", index=index.url)
    assert run.code == 0, run.stderr
    path = run.out / "build-order.json"
    order = json.loads(path.read_text())
    recorded = order.pop("invocation")
    path.write_text(json.dumps(order))
    make_sdist(xzlib("2.0"), index.folder)
    fixed = affected(str(run.out), "xzlib<=1.0", "--rebuild", "-q")
    assert fixed.exit_code == 0, fixed.output
    assert "warning: build-order.json does not record how the run was invoked" in fixed.stderr
    assert "-r and -c files" in fixed.stderr and "--strict" in fixed.stderr
    assert _builds(run.out)["xzlib"]["version"] == "2.0"
    # what it could recover, and the exclusion, are now recorded (the holds are not);
    # --max-stages is recorded only when a cycle was built with it
    recovered = _invocation(run.out)
    assert recovered == {**recorded, "constraints": ["xzlib!=1.0"],
                         "run": {**recorded["run"], "max_stages": 3}}


def test_rebuild_refuses_a_changed_settings_file_unless_given(serve_index, run_bootstrap,
                                                              tmp_path):
    index = serve_index(CHAIN)
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages.bystander]\nenv = { BYSTANDER_FLAVOUR = "plain" }\n')
    run = run_bootstrap("chainapp", "--settings", str(settings), index=index.url)
    assert run.code == 0, run.stderr
    first = _invocation(run.out)
    assert first["settings"]["path"] == str(settings)
    assert len(first["settings"]["digest"]) == 64
    before = _builds(run.out)
    make_sdist(xzlib("2.0"), index.folder)
    settings.write_text('[packages.bystander]\nenv = { BYSTANDER_FLAVOUR = "spicy" }\n')
    changed = affected(str(run.out), "xzlib<=1.0", "--rebuild", "-q")
    assert changed.exit_code == 1
    assert f"The settings file {settings} has changed since the run" in changed.output
    assert f"--settings {settings}" in changed.output and "Traceback" not in changed.output
    assert _builds(run.out) == before  # refused before anything was touched
    given = affected(str(run.out), "xzlib<=1.0", "--rebuild", "-q", "--settings", str(settings))
    assert given.exit_code == 0, given.output
    after = _builds(run.out)
    assert after["xzlib"]["version"] == "2.0"
    assert after["bystander"]["reused"] is False  # built again, with the file as it is now
    assert _invocation(run.out)["settings"]["digest"] != first["settings"]["digest"]


def test_the_invocation_record_reads_back_and_keeps_no_secret(tmp_path):
    from datetime import UTC, datetime

    from packaging.requirements import Requirement
    from packaging.version import Version

    from wheelstrap.errors import UserInputError
    from wheelstrap.index.age import AgeRule
    from wheelstrap.index.git import GitSource
    from wheelstrap.index.reqfiles import AllowedHashes, HashPolicy
    from wheelstrap.model.build import BuildPolicy, RunPolicy
    from wheelstrap.model.schema import read_build_order
    from wheelstrap.model.target import Target
    from wheelstrap.model.urls import public_url
    from wheelstrap.plan.invocation import read_invocation, record
    from wheelstrap.plan.options import GitPin, Options

    def allowed(name: str, digest: str) -> AllowedHashes:
        return AllowedHashes(name, {"sha256": frozenset({digest})}, ("reqs.txt:1",))

    git = GitSource("https://user:token@example.org/c.git", "0" * 40, "main")
    options = Options(
        requirements=(Requirement("a==1.0"), Requirement("c==2.0"),
                      Requirement("g @ git+https://user:token@example.org/g.git@v1")),
        constraints=(Requirement("b<2"),), held=(Requirement("z==1.0"),),
        hashes=HashPolicy({"a": allowed("a", "aa" * 32)},
                          {("c", "2.0"): allowed("c", "cc" * 32)}),
        git=(GitPin("c", Version("2.0"), git, direct=True),),
        output=tmp_path / "out", index_url="https://user:secret@index.example/simple/",
        target=Target.current(), policy=BuildPolicy(sandbox="none", timeout=60.0),
        run=RunPolicy(max_stages=2, strict=True, source_bootstrap=False, cross_check=True),
        release_age=AgeRule(datetime(2026, 12, 1, tzinfo=UTC), min_days=3.0),
        as_of_given=True, multiple_versions=True, seed_stores=(Path("seeds"),),
        settings_file=Path("settings.toml"), signing_key=Path("keys/run.key"),
        caches=("https://token@cache.example/",), trusted_keys=(Path("keys/a.pub"),))
    doc = record(options)
    text = json.dumps(doc)
    assert not any(s in text for s in ("secret", "token", "user")), text
    assert doc["index_url"] == "https://index.example/simple/"
    assert public_url("git+ssh://git@example.org/g.git") == "git+ssh://git@example.org/g.git"
    assert public_url("git+ssh://git:pw@example.org/g.git") == "git+ssh://example.org/g.git"
    assert doc["requirements"][2] == "g @ git+https://example.org/g.git@v1"
    assert doc["constraints"] == ["b<2"]  # the holds of a rebuild are not the invocation's
    assert doc["hashes"] == {"a": {"sha256": ["aa" * 32]}}
    assert doc["locked_hashes"] == {"c 2.0": {"sha256": ["cc" * 32]}}
    assert doc["git"] == [{"name": "c", "version": "2.0", "url": "https://example.org/c.git",
                           "commit": "0" * 40, "ref": "main"}]
    assert doc["release_age"] == {"min_days": 3.0, "max_days": None,
                                  "as_of": "2026-12-01T00:00:00Z"}
    assert doc["signing_key"] == "keys/run.key" and len(doc["settings"]["digest"]) == 64

    # through build-order.json and back: the same invocation
    path = tmp_path / "build-order.json"
    path.write_text(json.dumps({"schema": "wheelstrap-build-order", "version": 1,
                                "target": {}, "invocation": doc, "builds": []}))
    inv = read_invocation(read_build_order(path)["invocation"], path)
    assert inv.hashes.for_name("A") is not None
    assert inv.hashes.locked[("c", "2.0")].digests == {"sha256": {"cc" * 32}}
    again = Options(
        requirements=inv.requirements, constraints=inv.constraints, hashes=inv.hashes,
        git=inv.git, output=tmp_path / "out", index_url=str(inv.index_url),
        target=Target.current(), policy=inv.policy, run=inv.run,
        release_age=AgeRule(datetime(2026, 12, 1, tzinfo=UTC), inv.min_release_age,
                            inv.max_release_age),
        as_of_given=inv.as_of is not None, multiple_versions=inv.multiple_versions,
        seed_stores=inv.seed_stores, settings_file=inv.settings_file,
        signing_key=inv.signing_key, caches=inv.caches, trusted_keys=inv.trusted_keys)
    assert record(again) == doc

    # a malformed record is refused with every problem named
    bad = {**doc, "hashes": {"a": ["aa"]}, "run": {**doc["run"], "strict": "yes"}}
    path.write_text(json.dumps({"schema": "wheelstrap-build-order", "version": 1,
                                "target": {}, "invocation": bad, "builds": []}))
    try:
        read_build_order(path)
    except UserInputError as exc:
        assert 'invocation.hashes["a"]' in exc.message and "invocation.run.strict" in exc.message
    else:
        raise AssertionError("a malformed invocation was accepted")


def test_rebuild_of_a_run_from_a_lock_needs_the_lock_no_more(serve_index, run_bootstrap,
                                                            tmp_path):
    index = serve_index(CHAIN)
    lock = tmp_path / "pylock.toml"
    lock.write_text(tomli_w.dumps({"lock-version": "1.0", "created-by": "test", "packages": [
        {"name": p.name, "version": p.version,
         "sdist": {"name": p.filename, "url": f"{index.url}{p.name}/{p.filename}",
                   "hashes": {"sha256": hashlib.sha256(
                       (index.folder / p.filename).read_bytes()).hexdigest()}}}
        for p in CHAIN if p.name in ("chainapp", "bystander")]}))
    run = run_bootstrap("-r", str(lock), index=index.url)
    assert run.code == 0, run.stderr
    first = _invocation(run.out)
    assert sorted(first["requirements"]) == ["bystander==1.0", "chainapp==1.0"]
    assert set(first["locked_hashes"]) == {"bystander 1.0", "chainapp 1.0"}
    lock.unlink()
    make_sdist(xzlib("2.0"), index.folder)
    fixed = affected(str(run.out), "xzlib<=1.0", "--rebuild", "-q")
    assert fixed.exit_code == 0, fixed.output
    assert _builds(run.out)["xzlib"]["version"] == "2.0"
    assert _invocation(run.out) == {**first, "constraints": ["xzlib!=1.0"]}
