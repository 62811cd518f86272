"""The planner on its own: builds go to a fake executor that makes wheels in-process.

No backend, no environment, no subprocess: the fake answers each task from the scenario's
own description (dynamic requirements, runtime dependencies), so these tests look only
at what the planner decides: the order of dispatch, reuse before dispatch, cycle stages,
and how a failure propagates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from scenario import Pkg, make_dists, write_static_index
from test_cycles import TWO

from wheelstrap.build.inputs import Inputs, LocalInputs
from wheelstrap.build.tasks import Built, Failed, Outcome, Prepared, Report
from wheelstrap.errors import BuildFailure
from wheelstrap.index.client import IndexClient
from wheelstrap.index.reqfiles import parse_requirement
from wheelstrap.model.build import BuildSpec, RunPolicy
from wheelstrap.model.durations import Durations
from wheelstrap.model.graph import NodeId
from wheelstrap.model.target import Target
from wheelstrap.plan.options import Options
from wheelstrap.run.coordinator import Coordinator
from wheelstrap.run.workers import Workers


def _wheel(pkg: Pkg, folder: Path) -> Path:
    """A deterministic wheel of ``pkg`` (what its tiny backend would declare)."""
    dist = pkg.module
    di = f"{dist}-{pkg.version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {pkg.name}", f"Version: {pkg.version}"]
    meta += [f"Requires-Dist: {d}" for d in pkg.deps]
    files = {f"{dist}/__init__.py": b"", f"{di}/METADATA": ("\n".join(meta) + "\n").encode(),
             f"{di}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    def line(path: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return f"{path},sha256={digest.decode()},{len(data)}"

    record = [line(p, d) for p, d in sorted(files.items())] + [f"{di}/RECORD,,"]
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-{pkg.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(files):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), files[name])
    return path


class FakeExecutor(Executor):
    """Answers each task at once, in-process, from the scenario."""

    def __init__(self, pkgs: list[Pkg], folder: Path, fail: set[str]) -> None:
        self.pkgs = {p.name: p for p in pkgs}
        self.folder = folder
        self.fail = fail
        self.seen: list[BuildSpec] = []
        #: When set, the first task completes only once this holds (checked on a thread).
        self.hold_first: Callable[[], bool] | None = None
        #: Packages whose build reports a sha256 other than its wheel's.
        self.lie: set[str] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        spec, inputs, _, *_then = args  # a prepare is answered alone: its build comes later
        assert isinstance(inputs, LocalInputs)
        for w in spec.env:  # every input the task would fetch is offered, by hash
            assert w.sha256 in inputs.files
        self.seen.append(spec)
        future: Future[Outcome] = Future()
        outcome = self._answer(spec)
        hold, self.hold_first = self.hold_first, None
        if hold is None:
            future.set_result(outcome)
            return future

        def release() -> None:
            deadline = time.monotonic() + 30
            while not hold():
                if time.monotonic() > deadline:  # what the test waits for never came
                    future.set_exception(AssertionError(
                        f"the held task {spec.label} waited 30 s for a condition that "
                        "never held"))
                    return
                time.sleep(0.01)
            future.set_result(outcome)

        threading.Thread(target=release, daemon=True).start()
        return future

    def _answer(self, spec: BuildSpec) -> Outcome:
        pkg = self.pkgs[spec.name]
        report = Report(b"fake log\n", "fake", {"total": 0.0})
        if spec.name in self.fail:
            return Failed(spec.phase, BuildFailure("the fake backend failed"), report)
        if spec.phase == "prepare":
            return Prepared(tuple(pkg.dynamic), report)
        wheel = _wheel(pkg, self.folder / f"{spec.unit.folder()}-{len(self.seen)}")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if spec.name in self.lie:
            digest = "0" * 64
        return Built(wheel.name, digest, str(wheel), None, report)


class FakeWorkers(Workers):
    def __init__(self, executor: FakeExecutor, capacity: int) -> None:
        super().__init__(capacity)
        self.fake = executor

    @property
    def executor(self) -> Executor:
        return self.fake

    def inputs(self, files: Any) -> Inputs:
        return LocalInputs({sha: str(path) for sha, path in files})


def _plan(tmp_path: Path, pkgs: list[Pkg], top: list[str], *, capacity: int = 1,
          fail: set[str] = frozenset(), keep_going: bool = False,
          out: Path | None = None) -> tuple[Coordinator, FakeExecutor]:
    folder = tmp_path / "dists"
    if not folder.is_dir():
        make_dists(pkgs, folder)
    simple = write_static_index(folder, pkgs)
    fake = FakeExecutor(pkgs, tmp_path / "fake", set(fail))
    options = Options(requirements=tuple(parse_requirement(r) for r in top),
                      output=out or tmp_path / "out", index_url=simple.as_uri() + "/",
                      target=Target.current(), keep_going=keep_going,
                      run=RunPolicy(max_stages=3))
    client = IndexClient(options.index_url, retries=0)
    return Coordinator(options, client=client, workers=FakeWorkers(fake, capacity)), fake


CHAIN = [
    Pkg("top", deps=["leaf-one", "leaf-two", "app"]),
    Pkg("leaf-one"), Pkg("leaf-two"),
    Pkg("app", backend="chainback", build_requires=["chainback"]),
    Pkg("chainback", provides_backend=True),
]


def test_the_build_others_wait_for_goes_first(tmp_path):
    planner, fake = _plan(tmp_path, CHAIN[1:], ["leaf-one", "leaf-two", "app"])
    # the first task dispatched completes only once every source is at hand, so that
    # the next choice is made among all of them
    fake.hold_first = lambda: len(planner.p.states) == 4 and all(
        st.sourced for st in planner.p.states.values())
    result = planner.run()
    assert result.built == 4
    order = [(s.name, s.phase) for s in fake.seen]
    # one worker: chainback, which app (and through it the top level) waits for, is
    # prepared and built before the leaves' builds
    build = order.index(("chainback", "build"))
    assert build <= 2 and order.index(("chainback", "prepare")) < build
    assert all(build < order.index((leaf, "build")) for leaf in ("leaf-one", "leaf-two"))
    app = next(s for s in fake.seen if s.name == "app" and s.phase == "build")
    assert [w.filename for w in app.env] == ["chainback-1.0-py3-none-any.whl"]


def test_reuse_is_decided_before_anything_is_dispatched(tmp_path):
    planner, _ = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    again, fake2 = _plan(tmp_path, CHAIN, ["top"])
    result = again.run()
    assert (result.built, result.reused) == (0, 5)
    assert fake2.seen == []


def test_a_failure_stops_the_run_or_only_what_depends_on_it(tmp_path):
    planner, _ = _plan(tmp_path / "a", CHAIN, ["top"], fail={"chainback"})
    with pytest.raises(BuildFailure, match=r"Building chainback 1\.0 failed"):
        planner.run()
    planner, fake = _plan(tmp_path / "b", CHAIN, ["top"], fail={"chainback"},
                          keep_going=True)
    with pytest.raises(BuildFailure, match="1 package"):
        planner.run()
    built = {s.name for s in fake.seen if s.phase == "build"}
    assert built == {"leaf-one", "leaf-two", "top"}  # chainback failed, app never ran
    assert set(map(str, planner.p.failed)) == {"chainback 1.0"}
    assert {str(n): str(d) for n, d in planner.p.blocked.items()} == {"app 1.0": "chainback 1.0"}


def test_a_wheel_refused_when_published_fails_its_package_alone(tmp_path):
    # publishing (copy, hash, validation) runs off the planning thread; its refusal
    # is a failure of that build, as before
    planner, fake = _plan(tmp_path / "a", CHAIN, ["top"])
    fake.lie = {"chainback"}
    with pytest.raises(BuildFailure, match="the task reported"):
        planner.run()
    planner, fake = _plan(tmp_path / "b", CHAIN, ["top"], keep_going=True)
    fake.lie = {"chainback"}
    with pytest.raises(BuildFailure, match="1 package"):
        planner.run()
    assert set(map(str, planner.p.failed)) == {"chainback 1.0"}
    assert {str(n): str(d) for n, d in planner.p.blocked.items()} == {"app 1.0": "chainback 1.0"}
    wheels = sorted(p.name.split("-")[0] for p in planner.layout.wheels.glob("*.whl"))
    assert wheels == ["leaf_one", "leaf_two", "top"]
    assert not list((planner.layout.state / "incoming").glob("publish-*"))


def test_a_cycle_is_rebuilt_stage_by_stage_to_a_fixed_point(tmp_path):
    planner, fake = _plan(tmp_path, TWO, ["app"], capacity=2)
    result = planner.run()
    (cycle,) = result.cycles
    assert cycle["broken_by"]["method"] == "source" and cycle["fixed_point"] is True
    stages = sorted((s.name, s.unit.stage) for s in fake.seen
                    if s.phase == "build" and not s.unit.ordinary)
    assert stages == [("hostback", 1), ("hostback", 2), ("hosthelper", 1), ("hosthelper", 2)]
    stage1 = [s for s in fake.seen if s.unit.stage == 1 and s.phase == "build"]
    # stage 1 is built by an environment holding the stage-0 wheel, stage 2 by stage 1 only
    assert any(w.stage0 for s in stage1 for w in s.env)
    assert not any(w.stage0 for s in fake.seen if s.unit.stage == 2 for w in s.env)
    assert (tmp_path / "out" / "wheels" / "hostback-1.0-py3-none-any.whl").is_file()


# Two chains: deep -> mid -> app (three builds in a row) and wide -> w1, w2, w3 (one
# build, then three that need it).  More packages wait on wide, but deep starts the
# longer chain.
LONG = [
    Pkg("deep", provides_backend=True),
    Pkg("mid", backend="deep", build_requires=["deep"], provides_backend=True),
    Pkg("app", backend="mid", build_requires=["mid"]),
    Pkg("wide", provides_backend=True),
    *(Pkg(f"w{i}", backend="wide", build_requires=["wide"]) for i in (1, 2, 3)),
]


def _all_sourced(planner: Coordinator, count: int) -> Callable[[], bool]:
    return lambda: len(planner.p.states) == count and all(
        st.sourced for st in planner.p.states.values())


def _build_order(fake: FakeExecutor) -> list[str]:
    return [s.name for s in fake.seen if s.phase == "build"]


def test_the_longest_remaining_chain_goes_first(tmp_path):
    planner, fake = _plan(tmp_path, LONG, ["app", "w1", "w2", "w3"])
    fake.hold_first = _all_sourced(planner, len(LONG))
    assert planner.run().built == len(LONG)
    order = _build_order(fake)
    # one worker: deep (three builds remain from it) before wide (two), although three
    # packages wait on wide and two on deep
    assert order.index("deep") < order.index("wide")
    assert order.index("mid") < order.index("app")


def test_durations_of_earlier_runs_steer_the_ranking(tmp_path):
    out = tmp_path / "out"
    (out / ".wheelstrap").mkdir(parents=True)
    durations = Durations()
    durations.record("w2", "1.0", "build", 60.0)  # an earlier run found w2 slow
    (out / ".wheelstrap" / "durations.json").write_text(json.dumps(durations.to_json()))
    planner, fake = _plan(tmp_path, LONG, ["app", "w1", "w2", "w3"], out=out)
    fake.hold_first = _all_sourced(planner, len(LONG))
    planner.run()
    order = _build_order(fake)
    # wide now starts the longest chain (wide, then w2), and w2 goes before the other
    # builds that wait for wide
    assert order.index("wide") < order.index("deep")
    assert order.index("w2") < min(order.index("w1"), order.index("w3"))


def test_each_run_keeps_its_task_durations_for_the_next(tmp_path):
    planner, fake = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    path = tmp_path / "out" / ".wheelstrap" / "durations.json"
    doc = json.loads(path.read_text())
    assert doc["schema"] == "wheelstrap-durations" and doc["version"] == 1
    # every task that ran was timed (the fake reports 0 s)
    assert set(doc["tasks"]) == {f"{s.name} {s.version} {s.phase}" for s in fake.seen}
    assert Durations.load(path).get("chainback", "1.0", "build") == 0.0


@pytest.mark.parametrize("damage", [b"\xff\x00 not json", b"[1, 2]",
                                    b'{"schema": "wheelstrap-durations", "version": 99}'])
def test_a_damaged_durations_file_is_ignored_and_replaced(tmp_path, damage):
    out = tmp_path / "out"
    (out / ".wheelstrap").mkdir(parents=True)
    path = out / ".wheelstrap" / "durations.json"
    path.write_bytes(damage)
    planner, _ = _plan(tmp_path, CHAIN, ["top"], out=out)
    assert planner.run().built == 5
    assert len(Durations.load(path)) > 0  # rewritten whole by this run


def test_downloads_start_in_order_of_need(tmp_path, monkeypatch):
    planner, _ = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    ids = {n.name: n for n in planner.p.states}
    for st in planner.p.states.values():  # as if nothing were fetched or built yet
        st.final = None
        st.units.clear()
    planner.p.durations = Durations()  # (the fake's tasks took no time at all)
    # app waits on leaf-two; chainback is in a build environment (app's)
    planner.p._waiters = {ids["leaf-two"]: {ids["app"]}}
    assert ids["chainback"] in planner.p.in_build_envs
    assert ids["leaf-one"] not in planner.p.in_build_envs
    planner.p.ahead.staged.clear()
    started: list[str] = []
    monkeypatch.setattr(planner, "_submit_fetch",
                        lambda node, at_hand=False: started.append(node.name))
    monkeypatch.setattr("wheelstrap.run.fetching.DOWNLOADS", 2)
    planner.p.to_fetch = [ids["leaf-one"], ids["leaf-two"], ids["chainback"]]
    planner._fetches = 0
    planner._dispatch()
    # what a build environment needs first, then the longer remaining path; the rest
    # waits for a free line
    assert started == ["chainback", "leaf-two"]
    assert planner.p.to_fetch == [ids["leaf-one"]]


def test_an_sdist_fetched_ahead_needs_no_download_line(tmp_path, monkeypatch):
    planner, _ = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    ids = {n.name: n for n in planner.p.states}
    planner.p.ahead.staged = {ids["leaf-one"]}
    started: list[tuple[str, bool]] = []
    monkeypatch.setattr(planner, "_submit_fetch",
                        lambda node, at_hand=False: started.append((node.name, at_hand)))
    monkeypatch.setattr("wheelstrap.run.fetching.DOWNLOADS", 2)
    planner.p.to_fetch = [ids["leaf-two"], ids["leaf-one"]]
    planner._fetches = 2  # every line taken
    planner._dispatch()
    assert started == [("leaf-one", True)]  # at once, on the hand-off thread
    assert planner.p.to_fetch == [ids["leaf-two"]]  # still waits for a line


def test_a_worker_waits_for_a_wheel_a_build_needs_to_be_published(tmp_path):
    # back -> user -> user2 is the long chain; the leaves can run any time.  When back is
    # built, its worker stays taken until back's wheel is in place (published on another
    # thread), then goes to the chain, not to a leaf that happened to be ready a moment
    # before back's wheel was.
    pkgs = [Pkg("back"), Pkg("user", build_requires=["back"]),
            Pkg("user2", build_requires=["user"]), Pkg("leaf-a"), Pkg("leaf-b")]
    planner, fake = _plan(tmp_path, pkgs, ["user2", "leaf-a", "leaf-b"], capacity=1)
    back = NodeId(canonicalize_name("back"), "1.0")

    def chain_at_hand() -> bool:  # the leaves are still to do when back's build ends
        st = planner.p.states.get(back)
        return st is not None and st.sourced

    fake.hold_first = chain_at_hand
    planner.run()
    order = [(s.name, s.phase) for s in fake.seen]
    after = order[order.index(("back", "build")) + 1]
    assert after == ("user", "prepare"), order
    assert order.index(("back", "build")) < order.index(("leaf-b", "build")), order


def test_provenance_written_during_the_run_is_what_the_end_would_write(tmp_path):
    from wheelstrap.store.provenance import _by_sha, _text

    planner, _ = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    shipped = planner.provenance._shipped
    assert shipped and all(id(r) in planner.provenance._early for r, _ in shipped)
    for record, cycle in shipped:
        path = planner.layout.root / "provenance" / f"{record.wheel}.intoto.json"
        want = planner.provenance.statement(record, cycle, _by_sha(planner.seeds))
        assert path.read_text() == _text(want)


def test_a_statement_whose_early_writing_was_cancelled_is_written_at_the_end(tmp_path,
                                                                             monkeypatch):
    from wheelstrap.store.provenance import ProvenanceWriter

    class Cancelling(Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            future: Future[None] = Future()
            future.cancel()
            return future

    real = ProvenanceWriter.write_early
    monkeypatch.setattr(ProvenanceWriter, "write_early",
                        lambda self, record, seeds, pool: real(self, record, seeds,
                                                               Cancelling()))
    planner, _ = _plan(tmp_path, CHAIN, ["top"])
    planner.run()
    written = sorted(p.name for p in (planner.layout.root / "provenance").iterdir())
    assert written == sorted(f"{r.wheel}.intoto.json" for r, _ in planner.provenance._shipped)
