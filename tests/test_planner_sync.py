"""The planner, synchronously: no thread, no pool, no index, no file it writes.  Each step
feeds it what happened (a page, a fetched sdist, a task's outcome, a published wheel) and
asserts what it asked its effects for and what it queued."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelstrap.build.tasks import Built, Failed, Prepared, Report
from wheelstrap.config.settings import Prebuilt
from wheelstrap.dist.sources import BuildSystem
from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.errors import BuildFailure, WheelstrapError
from wheelstrap.index.resolve import PinnedCandidates
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.build import BuildSpec, UnitKey
from wheelstrap.model.graph import NodeId
from wheelstrap.model.progress import Progress
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.target import Target
from wheelstrap.model.wheel import WheelInfo, WheelRef
from wheelstrap.plan.nodes import Fetched, NodeState, Pending
from wheelstrap.plan.options import Options
from wheelstrap.plan.planner import Planner
from wheelstrap.seeds.store import SeedIndex


class Recorder:
    """Effects that record what the planner asked for; reuse finds nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def take_over_page(self, name: NormalizedName) -> bool:
        return False

    def ask_page(self, name: NormalizedName) -> None:
        self.calls.append(("ask_page", name))

    def fetch_prebuilt(self, node: NodeId, files: Sequence[ProjectFile],
                       prebuilt: Prebuilt) -> None:
        self.calls.append(("fetch_prebuilt", str(node)))

    def publish(self, pending: Pending, outcome: Built, chain: tuple[str, ...], task: Any,
                timings: dict[str, float], held: bool) -> None:
        self.calls.append(("publish", str(pending.node), outcome.filename, held))

    def dynamic(self, spec: BuildSpec) -> tuple[str, ...] | None:
        self.calls.append(("dynamic?", spec.label))
        return None

    def remember_dynamic(self, spec: BuildSpec, raw: tuple[str, ...]) -> None:
        self.calls.append(("remember_dynamic", spec.label, raw))

    def reuse(self, spec: BuildSpec) -> WheelRef | None:
        self.calls.append(("reuse?", spec.label))
        return None

    def failure(self, spec: BuildSpec, outcome: Failed, chain: tuple[str, ...]
                ) -> WheelstrapError:
        return outcome.error

    def inspect(self, node: NodeId, st: NodeState) -> PackPlan | NotPure:
        return NotPure(("not asked in these tests",))

    def pack_stage0(self, plan: PackPlan, run_key: str, source_date_epoch: int) -> WheelRef:
        raise AssertionError("no cycle here")

    def ship(self, node: NodeId, wheel: WheelRef, key: UnitKey) -> WheelRef:
        raise AssertionError("no cycle here")

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None, early: bool) -> None:
        self.calls.append(("shipped", record.wheel, early))

    def write_page(self, name: NormalizedName, wheel: WheelRef) -> None:
        self.calls.append(("write_page", name))

    def built(self, record: BuildRecord, wheel: WheelRef) -> None:
        self.calls.append(("built", record.wheel))

    def clean_node(self, node: NodeId) -> None:
        self.calls.append(("clean_node", str(node)))

    def take(self) -> list[tuple[Any, ...]]:
        calls, self.calls = self.calls, []
        return calls


def page(name: str, version: str = "1.0") -> ProjectPage:
    f = ProjectFile(f"{name}-{version}.tar.gz", f"https://i/{name}-{version}.tar.gz",
                    "a" * 64, None, False)
    return ProjectPage(canonicalize_name(name), (f,))


def node(name: str) -> NodeId:
    return NodeId(canonicalize_name(name), "1.0")


def fetched(tmp_path: Path, name: str, requires: tuple[str, ...], backend_path: bool
            ) -> Fetched:
    sdist = tmp_path / f"{name}-1.0.tar.gz"
    sdist.write_bytes(b"sdist")
    system = BuildSystem(tuple(map(Requirement, requires)), "back",
                         (".",) if backend_path else None)
    return Fetched(sdist, "b" * 64, f"https://i/{name}-1.0.tar.gz", system, 0, None, None)


def wheel(tmp_path: Path, name: str, requires: tuple[str, ...] = ()) -> WheelRef:
    path = tmp_path / f"{name}-1.0-py3-none-any.whl"
    path.write_bytes(name.encode())
    info = WheelInfo(canonicalize_name(name), Version("1.0"),
                     tuple(map(Requirement, requires)), None)
    return WheelRef(path, "c" * 64, info)


def planner(tmp_path: Path, *targets: str) -> tuple[Planner, Recorder]:
    options = Options(requirements=tuple(map(Requirement, targets)), output=tmp_path / "out",
                      index_url="https://i/simple/", target=Target.current(),
                      fetch_ahead=False)
    fx = Recorder()
    pins = PinnedCandidates(tmp_path / "resolved.json", "https://i/simple/",
                            tmp_path / "sdists", {})
    clock = iter(float(i) for i in range(1000))
    return Planner(options, fx, Progress(), pins, SeedIndex(), options.index_url,
                   lambda: next(clock)), fx


def test_a_target_and_its_backend_go_from_pages_to_published_wheels(tmp_path: Path) -> None:
    p, fx = planner(tmp_path, "app")
    # nothing known: the target's page is asked for, nothing is queued
    assert not p.plan(settle=True).complete
    assert fx.take() == [("ask_page", "app")]
    assert p.to_fetch == [] and p.ready == []
    # its page: the node joins the graph and its sdist is queued for a download line
    p.page_arrived(canonicalize_name("app"), page("app"), since=0.0)
    p.plan()
    assert p.to_fetch == [node("app")]
    p.to_fetch.clear()  # the coordinator started it
    # its sdist builds with 'back', whose page is asked for
    assert p.fetched(node("app"), fetched(tmp_path, "app", ("back",), False)) == []
    p.plan()
    assert fx.take() == [("ask_page", "back")]
    p.page_arrived(canonicalize_name("back"), page("back"), since=0.0)
    p.plan()
    assert p.to_fetch == [node("back")]
    p.to_fetch.clear()
    # 'back' builds with itself (backend-path): ready, once reuse said no
    p.fetched(node("back"), fetched(tmp_path, "back", (), True))
    p.plan()
    assert fx.take() == [("dynamic?", "back 1.0")]
    [pending] = p.ready
    assert pending.node == node("back") and pending.spec.phase == "prepare"
    assert pending.then is not None and pending.then.phase == "build"
    p.ready.clear()  # the coordinator submitted it
    # its prepare asked for nothing more and the build followed in the same task:
    # the wheel goes to be published, its worker held (app's environment needs it)
    built = Built("back-1.0-py3-none-any.whl", "c" * 64, None, None, Report(worker="w1"))
    p.task_done(pending, Prepared((), Report(worker="w1", timings={"total": 1.0}),
                                  then=built), since=0.0)
    assert fx.take() == [("remember_dynamic", "back 1.0", ()),
                         ("publish", "back 1.0", "back-1.0-py3-none-any.whl", True)]
    p.published(Pending(pending.node, pending.then, pending.env), wheel(tmp_path, "back"))
    assert fx.take() == [("built", "back-1.0-py3-none-any.whl"),
                         ("shipped", "back-1.0-py3-none-any.whl", True),
                         ("write_page", "back")]
    assert p.built == 1 and [r.wheel for r in p.records] == ["back-1.0-py3-none-any.whl"]
    # app's build environment exists now: app is ready
    p.plan()
    [app] = p.ready
    assert app.node == node("app")
    assert [w.filename for w in app.spec.env] == ["back-1.0-py3-none-any.whl"]


def test_a_failed_task_raises_its_error_and_keep_going_records_it(tmp_path: Path) -> None:
    p, _ = planner(tmp_path, "back")
    p.page_arrived(canonicalize_name("back"), page("back"), since=0.0)
    p.plan(settle=True)
    p.to_fetch.clear()
    p.fetched(node("back"), fetched(tmp_path, "back", (), True))
    p.plan()
    [pending] = p.ready
    error = BuildFailure("the backend failed")
    with pytest.raises(BuildFailure) as raised:
        p.task_done(pending, Failed("prepare", error, Report(worker="w1")), since=0.0)
    assert raised.value is error
    p.fail(node("back"), error)  # --keep-going
    assert node("back") in p.failed
    summary = p.failure_summary("OUT/logs")
    assert "back 1.0: the backend failed" in summary.message
