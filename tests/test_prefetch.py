"""Fetching ahead: static requirements read without a backend, speculative pages and
downloads that never become graph nodes, and a run that ends exactly as without them.

The planner runs against the fake executor of test_planner (no backend, no subprocess);
its first task can be held until something speculative has happened, so no assertion
depends on timing."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version
from scenario import Pkg, make_dists, make_sdist, write_static_index
from test_planner import FakeExecutor, FakeWorkers

import wheelstrap.run.coordinator as bootstrap_module
from wheelstrap.config.hooks import NO_PLUGINS
from wheelstrap.dist.sources import read_pyproject
from wheelstrap.dist.srcpack import read_pkg_info, static_requires
from wheelstrap.errors import WheelstrapError
from wheelstrap.index.client import IndexClient
from wheelstrap.index.reqfiles import parse_requirement
from wheelstrap.index.resolve import Candidate
from wheelstrap.index.simple import ProjectFile
from wheelstrap.model.graph import NodeId
from wheelstrap.model.limits import DEFAULT_LIMITS
from wheelstrap.model.target import Target
from wheelstrap.plan.ahead import LIKELY_BACKENDS
from wheelstrap.plan.options import Options
from wheelstrap.run.coordinator import Coordinator
from wheelstrap.run.fetching import BACKEND_FIRST_LINES
from wheelstrap.run.jobs import AheadFetchJob
from wheelstrap.store.output import Layout
from wheelstrap.store.store import Store

# -- static requirements ------------------------------------------------------------


def _tree(tmp_path: Path, pyproject: str | None, pkg_info: str | None) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    if pkg_info is not None:
        (root / "PKG-INFO").write_text(pkg_info)
    return root


def _static(root: Path) -> tuple[str, ...] | None:
    return static_requires(read_pyproject(root), read_pkg_info(root))


STATIC_INFO = "Metadata-Version: 2.2\nName: p\nVersion: 1\nRequires-Dist: b>=2\n"


@pytest.mark.parametrize(("pyproject", "pkg_info", "expected"), [
    # [project].dependencies, static: taken (extras' optional deps are not)
    ('[project]\nname = "p"\ndependencies = ["a>=1", "c; python_version < \'3\'"]\n'
     '[project.optional-dependencies]\nx = ["d"]\n', None,
     ("a>=1", "c; python_version < '3'")),
    ('[project]\nname = "p"\n', STATIC_INFO, ()),  # no dependencies: none
    # dynamic in [project]: PKG-INFO 2.2 without Dynamic: Requires-Dist
    ('[project]\nname = "p"\ndynamic = ["dependencies"]\n', STATIC_INFO, ("b>=2",)),
    (None, STATIC_INFO, ("b>=2",)),
    (None, STATIC_INFO.replace("2.2", "2.1"), None),  # before PEP 643: not binding
    (None, STATIC_INFO + "Dynamic: Requires-Dist\n", None),
    (None, STATIC_INFO + "Requires-Dist: [broken\n", None),
    ('[project]\nname = "p"\ndependencies = "a"\n', None, None),  # malformed
    ('[project]\nname = "p"\ndependencies = ["a b c"]\n', None, None),
    ("[build-system]\nrequires = []\n", None, None),  # nothing says
])
def test_static_requires(tmp_path, pyproject, pkg_info, expected):
    assert _static(_tree(tmp_path, pyproject, pkg_info)) == expected


# -- the store: facts cached, staged sdists -------------------------------------------


def _store(tmp_path: Path) -> Store:
    layout = Layout(tmp_path / "out")
    layout.prepare()
    return Store(layout)


def test_source_facts_are_cached_with_the_build_system(tmp_path):
    store = _store(tmp_path)
    sdist = make_sdist(Pkg("app", deps=["lib>=1"], build_requires=["tinyback"],
                           backend="tinyback"), tmp_path / "d")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    node = NodeId("app", "1.0")
    hooks = NO_PLUGINS.hooks(node.name, node.version)
    facts = store.source_facts(node, sdist, digest, hooks)
    assert facts.likely_requires == ("lib>=1",)
    assert [str(r) for r in facts.system.requires] == ["tinyback"]
    store.clean_node(node)  # a warm run does not unpack again
    assert store.source_facts(node, sdist, digest, hooks) == facts
    assert not store.node_dir(node).exists()


def test_a_staged_sdist_is_moved_into_place_when_the_run_asks_for_it(tmp_path):
    store = _store(tmp_path)
    sdist = make_sdist(Pkg("lib"), tmp_path / "d")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    cand = Candidate(canonicalize_name("lib"), Version("1.0"),
                     ProjectFile(sdist.name, sdist.as_uri(), digest, None, False))
    client = IndexClient("file:///nowhere/", retries=0)
    staged = store.fetch_ahead(client, cand)
    assert staged == store.ahead_dir / sdist.name and staged.is_file()
    sdist.unlink()  # the real fetch must not download again
    path, sha, _ = store.fetch_sdist(client, cand, lambda _: None)
    assert path == store.layout.sdists / sdist.name and sha == digest
    assert not staged.exists()
    assert store.fetch_ahead(client, cand) == path  # already in place: nothing to do
    unsigned = replace(cand, file=replace(cand.file, sha256=None))
    assert store.fetch_ahead(client, unsigned) is None  # not recognizable later
    (store.ahead_dir / "other.tar.gz").write_text("x")
    store.node_dir(NodeId("other", "1")).mkdir(parents=True)
    store.drop_ahead([NodeId("other", "1")])
    assert not store.ahead_dir.exists() and not store.node_dir(NodeId("other", "1")).exists()
    assert path.is_file()


# -- the planner ------------------------------------------------------------------------


class CountingClient(IndexClient):
    """Counts downloads by file name (on I/O threads); a download in ``gates`` starts,
    then waits for its gate to open."""

    def __init__(self, url: str) -> None:
        super().__init__(url, retries=0)
        self.downloads: dict[str, int] = {}
        self.gates: dict[str, threading.Event] = {}
        self.started: set[str] = set()
        self._count = threading.Lock()

    def download(self, url: str, dest: Path, sha256: str | None, allowed: Any = None) -> str:
        name = url.rsplit("/", 1)[-1]
        with self._count:
            self.downloads[name] = self.downloads.get(name, 0) + 1
            self.started.add(name)
        gate = self.gates.get(name)
        if gate is not None:
            gate.wait(30)
        return super().download(url, dest, sha256, allowed)


def _bootstrap(tmp_path: Path, sdists: list[Pkg], built: list[Pkg], top: list[str], *,
               out: str = "out", ahead: bool = True, constraints: tuple[str, ...] = (),
               hold: Callable[[Coordinator], bool] | None = None,
               tamper: Callable[[Path], None] | None = None
               ) -> tuple[Coordinator, CountingClient]:
    """A planner over an index of ``sdists`` whose builds answer as ``built`` says (the
    wheel's metadata may differ from the sdist's static requirements)."""
    folder = tmp_path / "dists"
    if not folder.is_dir():
        make_dists(sdists, folder)
        simple = write_static_index(folder, sdists)
        if tamper is not None:
            tamper(folder)
    simple = folder / "simple"
    fake = FakeExecutor(built, tmp_path / f"fake-{out}", set())
    options = Options(requirements=tuple(parse_requirement(r) for r in top),
                      constraints=tuple(parse_requirement(c) for c in constraints),
                      output=tmp_path / out, index_url=simple.as_uri() + "/",
                      target=Target.current(), fetch_ahead=ahead)
    client = CountingClient(options.index_url)
    planner = Coordinator(options, client=client, workers=FakeWorkers(fake, 1))
    if hold is not None:
        fake.hold_first = lambda: hold(planner)
    return planner, client


def _open_when(gate: threading.Event, ready: Callable[[], bool]) -> threading.Thread:
    """Open ``gate`` once ``ready()`` holds (looked at every 10 ms, for at most 30 s)."""
    def watch() -> None:
        for _ in range(3000):
            try:
                if ready():
                    break
            except RuntimeError:  # a dict of the planner changed while read
                pass
            threading.Event().wait(0.01)
        gate.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def _events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _ahead_downloaded(*nodes: str) -> Callable[[Coordinator], bool]:
    """Holds the first task until every one of ``nodes`` was downloaded ahead."""
    def ready(planner: Coordinator) -> bool:
        try:
            lines = (planner.layout.root / "events.jsonl").read_text().splitlines()
        except OSError:
            return False
        done = set()
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:  # a line being written
                continue
            if e.get("event") == "downloaded" and e.get("ahead") is True:
                done.add(e.get("node"))
        return set(nodes) <= done
    return ready


CHAIN = [Pkg("top", deps=["lib"]), Pkg("lib", deps=["leaf"]), Pkg("leaf")]


def test_a_static_dependency_is_fetched_before_its_dependent_is_built(tmp_path):
    planner, client = _bootstrap(tmp_path, CHAIN, CHAIN, ["top"],
                                 hold=_ahead_downloaded("lib 1.0"))
    planner.run()
    events = _events(tmp_path / "out")
    kinds = [(e["event"], e.get("node"), e.get("phase"), e.get("ahead", False))
             for e in events]
    ahead = kinds.index(("downloaded", "lib 1.0", None, True))
    built = kinds.index(("finished", "top 1.0", "build", False))
    assert ahead < built
    # the planner took the download over: still one node, one download each
    assert ("downloaded", "lib 1.0", None, False) in kinds[ahead:]
    assert sorted(n.name for n in planner.p.graph.nodes) == ["leaf", "lib", "top"]
    assert all(n == 1 for n in client.downloads.values())
    assert sorted(p.name for p in (tmp_path / "out" / "sdists").iterdir()) == [
        "leaf-1.0.tar.gz", "lib-1.0.tar.gz", "top-1.0.tar.gz"]
    # the page was asked ahead too
    assert {"event": "page", "name": "lib", "ahead": True}.items() <= next(
        e for e in events if e["event"] == "page" and e["name"] == "lib").items()


def _documents(out: Path) -> dict[str, Any]:
    return {doc: json.loads((out / doc).read_text()) for doc in ("graph.json",
                                                                  "build-order.json")}


def test_speculation_never_used_leaves_the_run_as_it_was(tmp_path):
    # the sdist of top says it needs ghost; its wheel says otherwise; setuptools (one of
    # LIKELY_BACKENDS) is on the index but nobody needs it
    assert "setuptools" in LIKELY_BACKENDS
    sdists = [Pkg("top", deps=["lib", "ghost"]), Pkg("lib"), Pkg("ghost"), Pkg("setuptools")]
    built = [Pkg("top", deps=["lib"]), Pkg("lib")]
    with_ahead, _ = _bootstrap(tmp_path, sdists, built, ["top"],
                               hold=_ahead_downloaded("ghost 1.0", "setuptools 1.0"))
    with_ahead.run()
    without, client = _bootstrap(tmp_path, sdists, built, ["top"], out="plain", ahead=False)
    without.run()
    out, plain = tmp_path / "out", tmp_path / "plain"
    assert _documents(out) == _documents(plain)
    assert sorted(p.name for p in (out / "sdists").iterdir()) == [
        "lib-1.0.tar.gz", "top-1.0.tar.gz"]
    assert not (out / ".wheelstrap" / "incoming" / "ahead").exists()
    work = sorted(p.name for p in (out / ".wheelstrap" / "work").iterdir())
    assert "ghost-1.0" not in work and "setuptools-1.0" not in work
    assert with_ahead.p.built == without.p.built == 2
    # nothing was fetched ahead without the switch
    assert not any(e.get("ahead") for e in _events(plain))
    assert len(client.downloads) == 2


def _corrupt(name: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:  # after the index recorded its sha256
        (folder / name).write_bytes(b"not the file the index lists")
    return tamper


def test_a_speculative_failure_does_not_fail_the_run(tmp_path):
    # missing: no such project; badhash: the index's sha256 does not match; broken: not
    # an archive at all (its sha256 matches)
    sdists = [Pkg("top", deps=["lib", "missing", "badhash", "broken"]), Pkg("lib"),
              Pkg("badhash"), Pkg("broken")]
    built = [Pkg("top", deps=["lib"]), Pkg("lib")]

    def tamper(folder: Path) -> None:
        _corrupt("badhash-1.0.tar.gz")(folder)
        (folder / "broken-1.0.tar.gz").write_bytes(b"not an archive")
        write_static_index(folder, [Pkg("broken")])  # listed with the right sha256

    def settled(planner: Coordinator) -> bool:  # every static dependency tried ahead
        a = planner.p.ahead
        tried = {n.name for n in list(a.depth)}
        return {"lib", "badhash", "broken"} <= tried and not a.downloading and not a.queue

    planner, client = _bootstrap(tmp_path, sdists, built, ["top"], tamper=tamper,
                                 hold=settled)
    result = planner.run()
    assert result.built == 2
    assert {"badhash-1.0.tar.gz", "broken-1.0.tar.gz"} <= set(client.downloads)
    out = tmp_path / "out"
    pages = {e["name"]: e for e in _events(out) if e["event"] == "page"}
    assert pages["missing"]["ahead"] is True
    assert sorted(p.name for p in (out / "sdists").iterdir()) == [
        "lib-1.0.tar.gz", "top-1.0.tar.gz"]
    assert not (out / ".wheelstrap" / "incoming" / "ahead").exists()


def test_a_failure_met_ahead_is_reported_by_the_planner_as_without_it(tmp_path):
    sdists = [Pkg("top", deps=["lib"]), Pkg("lib")]
    errors = []
    for out, ahead in (("out", True), ("plain", False)):
        planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"], out=out, ahead=ahead,
                                tamper=_corrupt("lib-1.0.tar.gz"))
        with pytest.raises(WheelstrapError) as err:
            planner.run()
        errors.append((type(err.value), err.value.message.replace(str(tmp_path / out), "")))
    assert errors[0] == errors[1]


def test_likely_backends_resolve_as_the_planner_would(tmp_path):
    sdists = [Pkg("top"), Pkg("setuptools", "1.0"), Pkg("setuptools", "2.0")]
    planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"], constraints=("setuptools<2",),
                            hold=_ahead_downloaded("setuptools 1.0"))
    planner.run()
    ahead = [e["node"] for e in _events(tmp_path / "out")
             if e["event"] == "downloaded" and e.get("ahead")]
    assert ahead == ["setuptools 1.0"]
    assert [n.name for n in planner.p.graph.nodes] == ["top"]


def test_likely_backends_absent_from_the_index_cost_nothing(tmp_path):
    planner, _ = _bootstrap(tmp_path, CHAIN, CHAIN, ["top"])
    assert planner.run().built == 3
    pages = [e for e in _events(tmp_path / "out") if e["event"] == "page"]
    assert all(p["name"] != "setuptools" or p.get("ahead") for p in pages)



def test_a_download_ahead_in_flight_is_waited_for_not_repeated(tmp_path):
    lib = NodeId(canonicalize_name("lib"), "1.0")

    def lib_started(planner: Coordinator) -> bool:
        return "lib-1.0.tar.gz" in client.started

    planner, client = _bootstrap(tmp_path, CHAIN, CHAIN, ["top"], hold=lib_started)
    gate = client.gates["lib-1.0.tar.gz"] = threading.Event()

    # opened once the planner waits for the download ahead
    watcher = _open_when(gate, lambda: any(isinstance(j, AheadFetchJob) and j.node == lib
                                           for j in list(planner._inflight.values())))
    assert planner.run().built == 3
    watcher.join(30)
    assert client.downloads == {"top-1.0.tar.gz": 1, "lib-1.0.tar.gz": 1,
                                "leaf-1.0.tar.gz": 1}
    events = _events(tmp_path / "out")
    lib_events = [e.get("ahead", False) for e in events
                  if e["event"] == "downloaded" and e["node"] == "lib 1.0"]
    assert lib_events == [True, False]


def _tar(path: Path, entries: list[tuple[str, str | None, str]]) -> Path:
    """A tar.gz of (name, text or None for a folder, symlink target or '')."""
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        for i, (name, text, link) in enumerate(entries):
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000 + i
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif text is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


PYPROJECT = '[project]\nname = "p"\nversion = "1"\ndependencies = ["a"]\n'
INFO = "Metadata-Version: 2.2\nName: p\nVersion: 1\nRequires-Dist: b\n"


@pytest.mark.parametrize("entries", [
    [("p-1/pyproject.toml", PYPROJECT, ""), ("p-1/PKG-INFO", INFO, "")],
    [("p-1", None, ""), ("p-1/PKG-INFO", INFO, ""), ("p-1/src/x.py", "", "")],
    [("pyproject.toml", PYPROJECT, ""), ("PKG-INFO", INFO, "")],  # flat
    [("p-1/PKG-INFO", INFO, ""), ("other/pyproject.toml", PYPROJECT, "")],  # two tops
    [("p-1/pyproject.toml", PYPROJECT, ""), (".hidden", "", "")],
    [("p-1/sub/pyproject.toml", PYPROJECT, "")],  # not at the root: none
])
@pytest.mark.parametrize("where", ["here", "helper"])
def test_facts_read_from_the_archive_are_those_of_the_unpacked_tree(tmp_path, entries, where,
                                                                    helper):
    from wheelstrap.dist.sources import unpack
    from wheelstrap.store.store import _archive_facts
    sdist = _tar(tmp_path / "p-1.tar.gz", entries)
    read = _archive_facts(sdist, DEFAULT_LIMITS, helper if where == "helper" else None)
    tree = unpack(sdist, tmp_path / "tree")
    assert read == (read_pyproject(tree.root), read_pkg_info(tree.root),
                    tree.source_date_epoch)


@pytest.mark.parametrize("entries", [
    [("p-1/real.toml", PYPROJECT, ""), ("p-1/pyproject.toml", "", "real.toml")],  # a link
    [("p-1/pyproject.toml", "[project\n", "")],  # bad TOML: unpacking reports it
    [("p-1/../evil", "", "")],  # a refused archive: unpacking reports it
])
@pytest.mark.parametrize("where", ["here", "helper"])
def test_unusual_archives_are_unpacked_instead(tmp_path, entries, where, helper):
    from wheelstrap.store.store import _archive_facts
    assert _archive_facts(_tar(tmp_path / "p-1.tar.gz", entries), DEFAULT_LIMITS,
                          helper if where == "helper" else None) is None


@pytest.fixture(scope="module")
def helper():
    from wheelstrap.dist.reader import Reader
    reader = Reader()
    reader.start()
    yield reader
    reader.close()


def _helper_answers(monkeypatch, script: str):
    """A Reader whose helper is ``script`` (Python), not wheelstrap's."""
    import subprocess

    from wheelstrap.dist import reader as reader_module
    real = subprocess.Popen

    def fake(cmd, **kw):
        return real([sys.executable, "-c", script], **kw)

    monkeypatch.setattr(reader_module.subprocess, "Popen", fake)
    return reader_module.Reader()


@pytest.mark.parametrize("script", [
    "import sys; sys.exit(3)",  # dies at once
    "import sys\nfor line in sys.stdin: print('not json', flush=True)",
    "import sys\nfor line in sys.stdin: print('[1, 2, 3]', flush=True)",  # wrong types
    "import sys\nfor line in sys.stdin: print('[\"x\", null, true]', flush=True)",
])
def test_a_helper_that_fails_leaves_the_reading_to_the_planner(tmp_path, monkeypatch, script):
    entries = [("p-1/pyproject.toml", PYPROJECT, ""), ("p-1/PKG-INFO", INFO, "")]
    sdist = _tar(tmp_path / "p-1.tar.gz", entries)
    from wheelstrap.dist.reader import archive_texts
    reader = _helper_answers(monkeypatch, script)
    reader.start()
    try:
        expected = archive_texts(sdist, DEFAULT_LIMITS, 1 << 20)
        assert expected is not None and expected[0] == PYPROJECT
        assert reader.texts(sdist, DEFAULT_LIMITS, 1 << 20) == expected
        assert reader._broken and reader._proc is None  # not asked again
        assert reader.texts(sdist, DEFAULT_LIMITS, 1 << 20) == expected
    finally:
        reader.close()


def test_the_helper_reads_many_sdists_in_turn(tmp_path, helper):
    from wheelstrap.dist.reader import archive_texts
    for i in range(20):
        sdist = _tar(tmp_path / f"p-{i}.tar.gz",
                     [(f"p-{i}/pyproject.toml", PYPROJECT + f"# {i}\n", ""),
                      (f"p-{i}/PKG-INFO", INFO, "")])
        assert helper.texts(sdist, DEFAULT_LIMITS, 1 << 20) == \
            archive_texts(sdist, DEFAULT_LIMITS, 1 << 20)
    assert helper._proc is not None and not helper._broken


def test_a_tree_nothing_changes_is_not_unpacked_to_read_its_facts(tmp_path):
    store = _store(tmp_path)
    sdist = make_sdist(Pkg("app", deps=["lib"]), tmp_path / "d")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    node = NodeId(canonicalize_name("app"), "1.0")
    store.source_facts(node, sdist, digest, NO_PLUGINS.hooks(node.name, node.version))
    assert not store.node_dir(node).exists()  # nothing unpacked


def test_a_rerun_that_never_needed_a_likely_backend_does_not_fetch_it(tmp_path):
    sdists = [Pkg("top"), Pkg("setuptools")]
    first, _ = _bootstrap(tmp_path, sdists, sdists, ["top"],
                          hold=_ahead_downloaded("setuptools 1.0"))
    first.run()
    again, client = _bootstrap(tmp_path, sdists, sdists, ["top"])
    again.run()
    assert not any(e.get("ahead") for e in _events(tmp_path / "out"))
    assert client.downloads == {}  # everything reused


class LinesClient(CountingClient):
    """Also records how many other downloads ran at once while a gated one was held.
    Every other download lingers a little, so that downloads the planner lets run at
    once do overlap (local files would otherwise finish before the next one starts)."""

    def __init__(self, url: str, held: str, linger: float = 0.3) -> None:
        super().__init__(url)
        self.held = held
        self.linger = linger
        self.active: set[str] = set()
        self.most_beside_held = 0

    def download(self, url: str, dest: Path, sha256: str | None, allowed: Any = None) -> str:
        name = url.rsplit("/", 1)[-1]
        with self._count:
            self.active.add(name)
            if self.held in self.active:
                self.most_beside_held = max(self.most_beside_held, len(self.active) - 1)
        try:
            if name != self.held:
                time.sleep(self.linger)
            return super().download(url, dest, sha256, allowed)
        finally:
            with self._count:
                self.active.discard(name)


def test_a_likely_backend_downloading_leaves_one_line_to_the_rest(tmp_path):
    leaves = [Pkg(f"leaf{i}") for i in range(5)]
    sdists = [Pkg("top", deps=[p.name for p in leaves], static=True), *leaves,
              Pkg("setuptools", "1.0")]
    planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"])
    client = LinesClient(planner.o.index_url, "setuptools-1.0.tar.gz")
    planner.client = planner.fetching.client = client
    gate = client.gates["setuptools-1.0.tar.gz"] = threading.Event()

    wanted = {p.filename for p in leaves} | {"top-1.0.tar.gz"}

    def the_rest_is_here() -> bool:
        with client._count:
            return wanted <= client.started and not client.active - {client.held}

    watcher = _open_when(gate, the_rest_is_here)
    assert planner.run().built == 6
    watcher.join(30)
    assert set(client.downloads) >= {p.filename for p in leaves}
    # Five leaves wanted at once, but beside the backend only one line was open to them,
    # and one more only for the planner's own download when it had none running (so it
    # never waits on speculation alone: see the test below). A download ahead that began
    # before the backend's may still be running then, so two is the most, never five.
    assert 1 <= client.most_beside_held <= BACKEND_FIRST_LINES
    assert len(leaves) > BACKEND_FIRST_LINES


class ConcurrencyClient(CountingClient):
    """Records the most downloads under way at once while ``window`` is set; every
    download lingers a little, so that those allowed at once do overlap."""

    def __init__(self, url: str, linger: float = 0.3) -> None:
        super().__init__(url)
        self.linger = linger
        self.window = threading.Event()
        self.active = 0
        self.most_in_window = 0

    def download(self, url: str, dest: Path, sha256: str | None, allowed: Any = None) -> str:
        with self._count:
            self.active += 1
            if self.window.is_set():
                self.most_in_window = max(self.most_in_window, self.active)
        try:
            time.sleep(self.linger)
            return super().download(url, dest, sha256, allowed)
        finally:
            with self._count:
                self.active -= 1


def test_the_lines_come_back_once_a_likely_backends_bytes_are_in(tmp_path):
    """While setuptools' sdist is read (here: held), its bytes are in: the lines kept for
    its download serve the rest of the tree again."""
    leaves = [Pkg(f"leaf{i}") for i in range(5)]
    sdists = [Pkg("top", deps=[p.name for p in leaves], static=True), *leaves,
              Pkg("setuptools", "1.0")]
    planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"])
    client = ConcurrencyClient(planner.o.index_url)
    planner.client = planner.fetching.client = client
    release = threading.Event()
    real = planner.fetching.bytes_in

    def bytes_in_then_a_long_read(node: NodeId) -> None:
        real(node)
        if node.name == "setuptools":
            client.window.set()  # its bytes are in; reading it takes a while
            release.wait(30)
            client.window.clear()

    planner.fetching.bytes_in = bytes_in_then_a_long_read  # type: ignore[method-assign]
    wanted = {p.filename for p in leaves}

    def the_leaves_are_here() -> bool:
        with client._count:
            return wanted <= set(client.downloads) and client.active == 0

    watcher = _open_when(release, the_leaves_are_here)
    assert planner.run().built == 6
    watcher.join(30)
    # five leaves wanted at once: with setuptools' bytes in, more than the lines kept
    # for its download ran together
    assert client.most_in_window > BACKEND_FIRST_LINES


def test_downloads_ahead_of_every_likely_backend_never_hold_up_the_run(tmp_path):
    # Both likely backends downloading ahead took every line there was while one of them
    # downloads; the target's own sdist then waited on them, and the planner, which waits
    # only on its own work, found nothing in flight and stopped ("stalled").
    sdists = [Pkg("top", deps=["leaf"], static=True), Pkg("leaf"),
              *(Pkg(name, "1.0") for name in LIKELY_BACKENDS)]
    planner, client = _bootstrap(tmp_path, sdists, sdists, ["top"])
    gates = {f"{Pkg(name).module}-1.0.tar.gz": threading.Event() for name in LIKELY_BACKENDS}
    client.gates.update(gates)

    def both_started() -> bool:
        with client._count:
            return set(gates) <= client.started

    watchers = [_open_when(gate, lambda: both_started() and planner.p.built == 2)
                for gate in gates.values()]
    assert planner.run().built == 2
    for watcher in watchers:
        watcher.join(30)
    assert client.downloads["top-1.0.tar.gz"] == 1


def _keep_scenario(tmp_path: Path, hold: float = 0.5) -> list[tuple[str, str]]:
    """app builds with setuptools and needs leaf at run time: reading app's sdist, the
    planner learns of both at once; leaf is ready long before setuptools' sdist is at
    hand; one worker.  The order in which builds started."""
    sdists = [Pkg("app", deps=["leaf"], static=True, build_requires=["setuptools"]),
              Pkg("leaf"), Pkg("setuptools")]
    planner, client = _bootstrap(tmp_path, sdists, sdists, ["app"])
    gate = client.gates["setuptools-1.0.tar.gz"] = threading.Event()

    def open_later() -> None:
        for _ in range(3000):
            if any(n.name == "leaf" and st.sdist_path is not None
                   for n, st in list(planner.p.states.items())):
                break
            time.sleep(0.01)
        time.sleep(hold)  # leaf is ready by now: with a free worker it would start
        gate.set()

    watcher = threading.Thread(target=open_later, daemon=True)
    watcher.start()
    assert planner.run().built == 3
    watcher.join(30)
    return [(e["node"], e["phase"]) for e in _events(tmp_path / "out")
            if e["event"] == "started"]


def test_a_worker_is_kept_for_a_likely_backend_still_downloading(tmp_path):
    # setuptools heads the longer chain (app waits on it) and builds with nothing else:
    # the one worker waits for its download rather than go to leaf a moment before
    started = _keep_scenario(tmp_path)
    assert started.index(("setuptools 1.0", "prepare")) < started.index(("leaf 1.0", "prepare"))


def test_a_worker_is_kept_only_so_long_for_a_download(tmp_path, monkeypatch):
    import wheelstrap.run.coordinator as bootstrap

    monkeypatch.setattr(bootstrap, "KEEP_FOR_DOWNLOAD", 0.0)
    started = _keep_scenario(tmp_path)
    assert started.index(("leaf 1.0", "prepare")) < started.index(("setuptools 1.0", "prepare"))


def test_a_kept_worker_goes_back_to_work_when_the_keep_runs_out(tmp_path):
    # the download takes far longer than KEEP_FOR_DOWNLOAD: once that is over, leaf gets
    # the worker, without waiting for anything else to happen in the run
    import wheelstrap.run.coordinator as bootstrap

    assert bootstrap.KEEP_FOR_DOWNLOAD < 2.5
    started = _keep_scenario(tmp_path, hold=3.0)
    assert started.index(("leaf 1.0", "prepare")) < started.index(("setuptools 1.0", "prepare"))


def test_a_read_ahead_never_keeps_the_planner_waiting(tmp_path):
    """Sdists read ahead (they may never be needed) are read by a helper of their own:
    with the reading ahead held, the target is still read, built and published
    (read ahead first, setuptools' sdist kept bootstrap hatchling's target, a tenth of
    its size, waiting 50 ms)."""
    sdists = [Pkg("top", "1.0"), Pkg("setuptools", "1.0")]
    planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"])
    order: list[str] = []
    real = planner.store.source_facts

    def recorded(node: NodeId, *args: Any, **kwargs: Any) -> Any:
        order.append(node.name)
        return real(node, *args, **kwargs)

    planner.store.source_facts = recorded  # type: ignore[method-assign]
    release, holding = threading.Event(), threading.Event()

    def hold_the_reading_ahead() -> None:
        with planner.fetching.reading_ahead.turn(-1):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_reading_ahead, daemon=True)
    holder.start()
    holding.wait(30)
    published: list[bool] = []

    def top_published() -> bool:  # while the reading ahead is still held
        if planner.p.records:
            published.append(True)
        return bool(published)

    watcher = _open_when(release, top_published)
    assert planner.run().built == 1
    watcher.join(30)
    holder.join(30)
    assert published, "the target waited for the reading ahead"
    assert order[0] == "top"


def test_a_worker_is_kept_for_a_likely_backend_fetched_ahead_while_the_tree_is_read(tmp_path):
    """setuptools, fetched ahead, not yet named by any sdist read: while sdists the
    planner needs are still coming, one of two workers waits for it rather than go to
    a build shorter than the index's size for it says it will take."""
    sdists = [Pkg("top", "1.0")]
    planner, _ = _bootstrap(tmp_path, sdists, sdists, ["top"])
    planner.workers = FakeWorkers(planner.workers.executor, 2)  # type: ignore[arg-type]
    setuptools = NodeId(canonicalize_name("setuptools"), "80.0")
    planner.p.ahead.backends[setuptools] = (0.0, 1_200_000)
    planner.p.to_fetch.append(NodeId(canonicalize_name("top"), "1.0"))  # still reading

    assert planner._kept_ahead(best=2.0, now=0.2) == 1
    assert planner._keep_until == pytest.approx(0.0 + bootstrap_module.KEEP_FOR_DOWNLOAD)
    # a longer build is ready: it goes
    assert planner._kept_ahead(best=60.0, now=0.2) == 0
    # kept only so long after its download began
    assert planner._kept_ahead(best=2.0, now=bootstrap_module.KEEP_FOR_DOWNLOAD) == 0
    # nothing the planner needs is still being fetched and read: nothing names it now
    planner.p.to_fetch.clear()
    assert planner._kept_ahead(best=2.0, now=0.2) == 0
    planner.p.to_fetch.append(NodeId(canonicalize_name("top"), "1.0"))
    # no size from the index: no guess that it is long
    planner.p.ahead.backends[setuptools] = (0.0, None)
    assert planner._kept_ahead(best=2.0, now=0.2) == 0
    planner.p.ahead.backends[setuptools] = (0.0, 1_200_000)
    # one worker: never kept
    planner.workers = FakeWorkers(planner.workers.executor, 1)  # type: ignore[arg-type]
    assert planner._kept_ahead(best=2.0, now=0.2) == 0


def _offer_wheel_metadata(folder: Path, pkg: Pkg, requires: list[str]) -> None:
    """Add to ``pkg``'s index page a wheel of its version whose core metadata the index
    serves beside it (PEP 658; the wheel itself is never fetched, so it is absent)."""
    wheel = f"{pkg.module}-{pkg.version}-py3-none-any.whl"
    text = (f"Metadata-Version: 2.1\nName: {pkg.name}\nVersion: {pkg.version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    (folder / f"{wheel}.metadata").write_bytes(text)
    page = folder / "simple" / canonicalize_name(pkg.name) / "index.html"
    link = (f'<a href="../../{wheel}#sha256={"0" * 64}" data-core-metadata="sha256='
            f'{hashlib.sha256(text).hexdigest()}">{wheel}</a>\n')
    page.write_text(page.read_text().replace("</body>", link + "</body>"))


def test_a_wheels_metadata_names_what_to_fetch_while_the_sdist_downloads(tmp_path):
    """The target's sdist (held here) does not promise its requirements; the core
    metadata its index serves for a wheel of the same version names dep, which is
    fetched ahead before the sdist is in: nothing else could have named it."""
    top, dep = Pkg("top", deps=["dep"]), Pkg("dep")
    planner, client = _bootstrap(tmp_path, [top, dep], [top, dep], ["top"],
                                 tamper=lambda folder: _offer_wheel_metadata(
                                     folder, top, ["dep>=1", "docs; extra == 'doc'"]))
    gate = client.gates[top.filename] = threading.Event()
    seen: list[bool] = []

    def dep_fetched() -> bool:
        with client._count:
            here = dep.filename in client.started
        if here:
            seen.append(True)
        return here

    watcher = _open_when(gate, dep_fetched)
    assert planner.run().built == 2
    watcher.join(30)
    assert seen, "dep was not fetched while top's sdist downloaded"
    events = [e for e in _events(tmp_path / "out") if e["event"] == "metadata"]
    assert [(e["node"], e["requires"]) for e in events] == [("top 1.0", 2)]
    # a hint only: the graph has dep through the wheel built from top's sdist
    assert client.downloads.get(f"{top.module}-1.0-py3-none-any.whl") is None


def test_wheel_metadata_that_fails_its_hash_is_ignored(tmp_path):
    top, dep = Pkg("top", deps=["dep"]), Pkg("dep")

    def tamper(folder: Path) -> None:
        _offer_wheel_metadata(folder, top, ["dep"])
        wheel = folder / f"{top.module}-1.0-py3-none-any.whl.metadata"
        wheel.write_bytes(wheel.read_bytes() + b"Requires-Dist: evil\n")

    planner, _ = _bootstrap(tmp_path, [top, dep], [top, dep], ["top"], tamper=tamper)
    assert planner.run().built == 2
    assert not [e for e in _events(tmp_path / "out") if e["event"] == "metadata"]
    assert "evil" not in json.dumps(_events(tmp_path / "out"))
