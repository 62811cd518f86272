"""What the I/O threads do to bring an sdist in: download and verify it, read its facts
(in turns, the likely backends' first), and say when a likely backend's bytes are in.

The coordinator submits :meth:`Fetching.fetch` and :meth:`Fetching.fetch_ahead` to its
pools; its loop also waits on :attr:`Fetching.landing`, which completes when a likely
backend's bytes are in, so that the download lines kept for it are given back at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

from packaging.requirements import Requirement

from wheelstrap.build import toolchain
from wheelstrap.build.vendor import cargo as crates_store
from wheelstrap.config.hooks import PackageHooks
from wheelstrap.dist.reader import Reader
from wheelstrap.errors import WheelstrapError
from wheelstrap.fsutil import sha256_file
from wheelstrap.index.client import IndexClient
from wheelstrap.index.git import GitSource
from wheelstrap.index.reqfiles import HashPolicy
from wheelstrap.index.resolve import Candidate
from wheelstrap.model.build import Vendored
from wheelstrap.model.graph import NodeId
from wheelstrap.plan.ahead import LIKELY_BACKENDS, backend_rank
from wheelstrap.plan.nodes import Fetched, NodeState
from wheelstrap.run.gitfetch import fetch_tree
from wheelstrap.run.turns import Turns
from wheelstrap.store.store import SourceFacts, Store

#: How many sdists download at once (the threads of the I/O pool); the rest wait, what
#: build environments need and those with the longest remaining path first.
DOWNLOADS = 6

#: How many sdists download at once while one of LIKELY_BACKENDS does: it heads the
#: longest chain and can be built the moment it is here (it builds with itself), so it
#: gets most of the bandwidth rather than a sixth of it; one more line keeps the rest
#: of the tree coming.
BACKEND_FIRST_LINES = 2


class Fetching:
    """Downloads and reads of sdists, for the planner and ahead of it."""

    def __init__(self, store: Store, client: IndexClient, hashes: HashPolicy,
                 warn: Callable[[str], None], stop: threading.Event) -> None:
        self.store = store
        self.client = client
        self.hashes = hashes
        self.warn = warn
        self.stop = stop  # the run is over: no more reading ahead
        # Sdists' facts are read one at a time (by a reading helper, or here should it
        # fail), the likely backends' first, rather than all at once, each slowly: those
        # the planner waits for by one helper, those read ahead by another, so that a
        # large sdist read ahead never keeps the planner waiting (see facts)
        self._reading = Turns()
        self.reading_ahead = Turns()
        self.ahead_reader = Reader()  # for sdists read ahead: no process yet
        # Likely backends whose bytes are in while their sdist is still being read: they
        # no longer need the bandwidth BACKEND_FIRST_LINES keeps for them.  Written by the
        # I/O threads, which complete ``landing`` to wake the loop.
        self._landed: set[NodeId] = set()
        self.landing: Future[None] = Future()
        self._lock = threading.Lock()

    def fetch(self, st: NodeState) -> Fetched:
        """(I/O pool) The verified sdist, its URL, its ``[build-system]``, the runtime
        requirements it declares final and those it likely has (for fetching ahead); for
        a cargo build, its crates fetched and checked into the crates store (a build on
        another machine fetches them into its own)."""
        source = st.hooks.settings.source
        try:
            if isinstance(source, GitSource):
                return self._fetch_git(st, source)
            path, digest, url = self.store.fetch_sdist(
                self.client, st.candidate, self.warn, source,
                allowed=self.hashes.for_node(st.id.name, st.id.version))
            self.bytes_in(st.id)
            facts = self.facts(st.id, path, digest, st.hooks)
            vendored = _vendor(facts)
        except WheelstrapError as exc:
            raise exc.with_chain(st.chain) from None
        return Fetched(path, digest, url, facts.system, facts.source_date_epoch,
                       facts.static_requires, facts.likely_requires, vendored=vendored,
                       external=facts.external)

    def _fetch_git(self, st: NodeState, source: GitSource) -> Fetched:
        """The sdist made from ``source``'s commit before (a warm run: no git, no
        ``build_sdist``), or the commit's tree, for the planner to make it from."""
        made = self.store.git_sdist(source, st.id.name, st.id.version)
        if made is not None:
            path, digest = made
            facts = self.facts(st.id, path, digest, st.hooks)
            return Fetched(path, digest, source.uri, facts.system, facts.source_date_epoch,
                           facts.static_requires, None, vendored=_vendor(facts),
                           external=facts.external)
        tree, epoch, system = fetch_tree(self.store, source, st.id.name, st.id.version)
        return Fetched(tree, sha256_file(tree), source.uri, system, epoch, None, None,
                       make_sdist=True)

    def fetch_ahead(self, node: NodeId, c: Candidate, hooks: PackageHooks
                    ) -> tuple[int, tuple[Requirement, ...]] | None:
        """(I/O pool) Download an sdist ahead and read its tree: its size, and the
        requirements to follow (``[build-system]`` and static runtime ones)."""
        path = self.store.fetch_ahead(self.client, c,
                                      allowed=self.hashes.for_node(node.name, node.version))
        if path is None or c.file.sha256 is None or self.stop.is_set():
            return None
        self.bytes_in(node)
        facts = self.facts(node, path, c.file.sha256, hooks, ahead=True)
        reqs = list(hooks.build_requires(facts.system.requires, dynamic=False))
        if facts.static_requires is not None:
            reqs += hooks.requires(Requirement(r) for r in facts.static_requires)
        return path.stat().st_size, tuple(reqs)

    def facts(self, node: NodeId, sdist: Path, digest: str, hooks: PackageHooks,
              ahead: bool = False) -> SourceFacts:
        """(I/O threads) :meth:`Store.source_facts`: from the record when there is one,
        else read from the sdist in turn, the likely backends' first: they head the
        longest chains.  What is read ahead (``ahead``: it may never be needed) is read
        by a helper of its own, in turns of its own (:attr:`reading_ahead`), so that the
        planner never waits behind it.  (An sdist the planner needs while it is fetched
        ahead is not read twice: the planner waits for that fetch.)"""
        known = self.store.known_facts(sdist, digest, hooks)
        if known is not None:
            return known
        turns, reader = (self.reading_ahead, self.ahead_reader) if ahead \
            else (self._reading, None)
        with turns.turn(backend_rank(node.name)):
            # looks at the record again first: the same sdist, fetched ahead and by the
            # planner, may have been read while this thread waited for its turn
            return self.store.source_facts(node, sdist, digest, hooks, reader=reader)

    def bytes_in(self, node: NodeId) -> None:
        """(I/O threads) ``node``'s sdist is downloaded; reading it comes next."""
        if node.name not in LIKELY_BACKENDS:
            return
        with self._lock:
            self._landed.add(node)
            if not self.landing.done():
                self.landing.set_result(None)

    def rearm(self) -> None:
        """The loop saw :attr:`landing`: wait for the next one."""
        with self._lock:
            self.landing = Future()

    def done(self, node: NodeId) -> None:
        """``node``'s download and reading are over."""
        with self._lock:
            self._landed.discard(node)

    def lines(self, backends: Iterable[NodeId], ahead: Iterable[NodeId]) -> int:
        """How many sdists may download at once now: fewer while the bytes of a likely
        backend (among the planner's ``backends`` and the downloads ``ahead``) are still
        coming."""
        with self._lock:
            landed = set(self._landed)
        if any(n not in landed for n in backends) or any(
                n.name in LIKELY_BACKENDS and n not in landed for n in ahead):
            return BACKEND_FIRST_LINES
        return DOWNLOADS


def _vendor(facts: SourceFacts) -> tuple[Vendored, ...]:
    """What a build of this sdist is given by vendors: for a cargo build, before its first
    build, the toolchain checked to be here and every crate fetched and checked into the
    store."""
    if facts.cargo is None:
        return ()
    rust = toolchain.require()
    source = crates_store.registry_url()
    crates_store.fetch(facts.cargo.crates, base=source)
    return (Vendored("cargo", facts.cargo.crates, facts.cargo.unlocked, rust.versions,
                     source),)
