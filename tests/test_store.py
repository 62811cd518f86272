"""The store, the one writer of OUT: what it refuses to ship, and what it cleans at the
start of a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelstrap.errors import InternalError
from wheelstrap.fsutil import TMP_PREFIX
from wheelstrap.model.build import UnitKey
from wheelstrap.model.graph import NodeId
from wheelstrap.model.wheel import Seed, VerifiedSeed, WheelInfo, WheelRef
from wheelstrap.store.output import Layout
from wheelstrap.store.store import Store

NODE = NodeId(canonicalize_name("a"), "1.0")


def _ref(tmp_path: Path, **kind: object) -> WheelRef:
    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    info = WheelInfo(NODE.name, Version("1.0"), (), None)
    return WheelRef(wheel, "0" * 64, info, **kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["seed", "stage0", "prebuilt"])
def test_a_seed_or_a_stage0_wheel_never_ships(tmp_path: Path, kind: str) -> None:
    store = Store(Layout(tmp_path / "out"))
    store.layout.prepare()
    seed = VerifiedSeed(Seed(NODE.name, "1.0", "a-1.0-py3-none-any.whl", "0" * 64, "test",
                             tmp_path), WheelInfo(NODE.name, Version("1.0"), (), None))
    extra = {"seed": {"seed": seed}, "stage0": {"stage0": True},
             "prebuilt": {"prebuilt": True}}[kind]
    with pytest.raises(InternalError, match="only wheels built from source ship"):
        store.ship(NODE, _ref(tmp_path, **extra), UnitKey("cycle", 2))
    assert not list((tmp_path / "out" / "wheels").glob("*.whl"))
    shipped = store.ship(NODE, _ref(tmp_path), UnitKey("cycle", 2))  # built from source
    assert shipped.path == tmp_path / "out" / "wheels" / "a-1.0-py3-none-any.whl"


def test_a_run_starts_by_removing_what_a_stopped_one_left(tmp_path: Path) -> None:
    store = Store(Layout(tmp_path / "out"))
    store.layout.prepare()
    left = [tmp_path / "out" / "wheels" / f"{TMP_PREFIX}1",
            tmp_path / "out" / ".wheelstrap" / "cache" / "ab" / f"{TMP_PREFIX}2"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    unit = tmp_path / "out" / ".wheelstrap" / "work" / "a-1.0" / "build"
    unit.mkdir(parents=True)
    kept = tmp_path / "out" / "wheels" / "a-1.0-py3-none-any.whl"
    kept.write_bytes(b"whole")
    notes = store.open_run()
    assert not any(p.exists() for p in left) and not unit.exists() and kept.exists()
    assert len(notes) == 2 and "removed 2 temporary file(s)" in notes[0]
    assert store.open_run() == []  # nothing left the second time


def test_a_finished_run_on_disk_leaves_nothing_the_next_calls_unfinished(
        serve_index, run_bootstrap) -> None:
    from scenario import Pkg

    index = serve_index([Pkg("app", deps=["lib"], static=True), Pkg("lib")])
    first = run_bootstrap("app", "--work-on-disk", index=index.url)
    assert first.code == 0, first.stderr
    again = run_bootstrap("app", "--work-on-disk", index=index.url)
    assert again.code == 0, again.stderr
    assert "a stopped run left" not in again.stderr


def test_build_folders_queued_for_removal_are_removed_before_the_run_ends(
        serve_index, run_bootstrap, monkeypatch, tmp_path) -> None:
    import time

    from scenario import Pkg

    real = Store.clean_unit

    def slow(self: Store, node: NodeId, unit: UnitKey) -> None:
        time.sleep(0.2)  # removing a big environment takes a while
        real(self, node, unit)

    monkeypatch.setattr(Store, "clean_unit", slow)
    names = [f"p{i}" for i in range(5)]
    index = serve_index([Pkg("top", deps=names, static=True), *map(Pkg, names)])
    run = run_bootstrap("top", "--work-on-disk", "-j", "2", index=index.url)
    assert run.code == 0, run.stderr
    work = run.out / ".wheelstrap" / "work"
    assert [d for d in work.glob("*/*") if d.is_dir() and d.name != "source"] == []


def test_a_snapshot_puts_back_every_document_wheel_and_page_and_only_those(
        tmp_path: Path) -> None:
    layout = Layout(tmp_path / "out")
    store = Store(layout)
    root = layout.root
    kept = {"build-order.json": "old order", "graph.json": "old graph",
            "report.html": "old report", "failures.json": "old failures",
            "provenance/a-1.0-py3-none-any.whl.intoto.json": "old statement",
            "wheels/a-1.0-py3-none-any.whl": "old wheel",
            "wheels/simple/a/index.html": "old page", "wheels/simple/index.html": "old root"}
    for rel, text in kept.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "logs").mkdir()
    with store.locked():
        store.open_run()
        snap = store.snapshot()
        # the run replaces some files, adds others and removes none of its own
        for rel in ("build-order.json", "wheels/a-1.0-py3-none-any.whl",
                    "wheels/simple/a/index.html", "provenance/a-1.0-py3-none-any.whl.intoto.json"):
            tmp = root / (rel + ".new")
            tmp.write_text("new")
            tmp.replace(root / rel)
        added = ["pylock.toml", "sbom.cdx.json", "constraints.txt", "cycles.json",
                 "wheels/b-2.0-py3-none-any.whl", "wheels/simple/b/index.html",
                 "provenance/b-2.0-py3-none-any.whl.intoto.json"]
        for rel in added:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("new")
        (root / "logs" / "b-2.0.log").write_text("the attempt")
        store.restore(snap)
    for rel, text in kept.items():
        assert (root / rel).read_text() == text, rel
    for rel in added:
        assert not (root / rel).exists(), rel
    assert not (root / "wheels" / "simple" / "b").exists()
    assert (root / "logs" / "b-2.0.log").read_text() == "the attempt"  # the attempt's
    assert not (layout.state / "snapshot").exists()
    # a run that went well drops its snapshot and keeps what it wrote
    with store.locked():
        snap = store.snapshot()
        (root / "pylock.toml").write_text("new")
        store.drop(snap)
    assert (root / "pylock.toml").read_text() == "new"
    assert not (layout.state / "snapshot").exists()
