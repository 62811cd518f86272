"""The coordinator: runs one bootstrap, doing what the planner decides.

The main thread owns every piece of state.  Index pages and sdist downloads run on their
own pools (:mod:`wheelstrap.run.fetching`); builds are plain functions
(:func:`wheelstrap.build.tasks.run_task` over a frozen
:class:`~wheelstrap.model.build.BuildSpec`) submitted to an injected executor
(:mod:`wheelstrap.run.workers`: local threads, or a Dask cluster); what is in flight is a
typed job (:mod:`wheelstrap.run.jobs`).  The loop starts what the planner
(:class:`~wheelstrap.plan.planner.Planner`) has queued, longest remaining chain first,
while workers and download lines are free, hands back what completes, and carries out
what the planner asks (it is the planner's ``Effects``); every result is verified and
published by the :class:`~wheelstrap.store.store.Store`, the only writer of OUT.  The
pools and helper processes close on one ``ExitStack``; Ctrl-C kills the builds and
closes them without waiting.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
)

from wheelstrap.build import backend, scratch
from wheelstrap.build.bytecode import Bytecode
from wheelstrap.build.bytecode import enabled as bytecode_enabled
from wheelstrap.build.tasks import Built as BuiltOutcome
from wheelstrap.build.tasks import Failed, Outcome, run_task
from wheelstrap.config.settings import Prebuilt
from wheelstrap.dist import srcpack, validate
from wheelstrap.dist.sources import declared_requires
from wheelstrap.errors import (
    InternalError,
    SourceError,
    UserInputError,
    WheelstrapError,
)
from wheelstrap.index.age import format_time
from wheelstrap.index.client import IndexClient
from wheelstrap.index.git import GitSource
from wheelstrap.index.lockfiles import SkippedEntry
from wheelstrap.index.resolve import (
    PinnedCandidates,
)
from wheelstrap.index.simple import ProjectFile
from wheelstrap.model.build import (
    BuildSpec,
    UnitKey,
)
from wheelstrap.model.graph import Graph, NodeId
from wheelstrap.model.progress import (
    NULL_REPORTER,
    Downloaded,
    FetchStarted,
    MetadataRead,
    Note,
    Progress,
    Reporter,
    RunFinished,
    RunStarted,
    SdistMade,
    Task,
    TaskFailed,
    TaskFinished,
    TaskStarted,
    ToReporter,
    Warn,
    rounded,
)
from wheelstrap.model.records import BuildRecord, in_build_order
from wheelstrap.model.urls import public_url
from wheelstrap.model.wheel import WheelRef
from wheelstrap.plan.ahead import (
    LIKELY_BACKENDS,
    AheadCommand,
    AskMetadata,
    AskPage,
    FetchAhead,
    backend_rank,
)
from wheelstrap.plan.invocation import record as invocation_record
from wheelstrap.plan.nodes import Fetched, NodeState, Pending
from wheelstrap.plan.options import GitPin, Options
from wheelstrap.plan.planner import Planner
from wheelstrap.run.fetching import DOWNLOADS, Fetching
from wheelstrap.run.gitpins import git_pins
from wheelstrap.run.headstart import HeadStart
from wheelstrap.run.jobs import (
    AheadFetchJob,
    FetchJob,
    Job,
    MetadataJob,
    PageJob,
    PrebuiltJob,
    Publishing,
    PublishJob,
    TaskJob,
)
from wheelstrap.run.workers import Workers
from wheelstrap.seeds.store import SeedIndex
from wheelstrap.store.cache import RemoteCache
from wheelstrap.store.events import EventLog
from wheelstrap.store.output import Layout
from wheelstrap.store.signing import Signer, load_trusted
from wheelstrap.store.store import Documents, Store


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[BuildRecord, ...]
    graph: Graph
    built: int
    reused: int
    cycles: tuple[dict[str, Any], ...]
    unused_settings: tuple[str, ...] = ()
    prebuilt: tuple[str, ...] = ()


#: How many built wheels are checked and put into the output at once.
PUBLISHERS = 2

#: How many index pages are requested at once (a pool of their own).
PAGES = 4

#: How long a worker is kept free for a likely backend whose sdist downloads (see
#: ``Coordinator._kept_for_backends``) at most, counted from the download's start: on a
#: slow line the run does not idle for the whole download.
KEEP_FOR_DOWNLOAD = 1.0


class Coordinator:
    """Runs one bootstrap: opens the pools, the workers and the store, starts what the
    planner (:class:`~wheelstrap.plan.planner.Planner`) queues, brings back what
    completes, and does what the planner asks (it is the planner's :class:`Effects`)."""

    def __init__(self, options: Options, reporter: Reporter = NULL_REPORTER,
                 client: IndexClient | None = None, workers: Workers | None = None,
                 head: HeadStart | None = None) -> None:
        self.o = options
        #: the versions made from git commits, with the commits the requirements' branches
        #: and tags named (recorded by commit in the invocation)
        self.git_resolved: tuple[GitPin, ...] = ()
        self._head = head or HeadStart()  # helpers the command started before the run
        #: the run's one stream of progress: the display, and events.jsonl once it runs
        self.progress = Progress()
        self.progress.subscribe(ToReporter(reporter))
        self.client = client or IndexClient(options.index_url, retries=options.retries,
                                            request_deadline=options.index_timeout)
        self.layout = Layout(options.output.absolute())
        self.store = Store(self.layout, validate.target_tags(options.target.python),
                           options.archive_limits)
        self.workers = workers or Workers(options.jobs)
        backend.uv_binary()  # locate uv once, before worker threads exist
        _no_git_under_hashes(options)
        self.seeds = SeedIndex.load(options.seed_stores, options.archive_limits)
        self.pins = PinnedCandidates.load(self.layout.state / "resolved.json", options.index_url,
                                          self.layout.sdists)
        # the key is read here, before any build starts, and never leaves this process
        signer = Signer(options.signing_key) if options.signing_key is not None else None
        self.provenance = self.store.provenance_writer(
            public_url(options.index_url), options.target, options.policy.to_json(), signer)
        if options.caches:
            self.store.remote = RemoteCache(
                options.caches, load_trusted(options.trusted_keys),
                self.progress.warning)
        self.provenance.resolution = _statement_resolution(options)
        self.events = EventLog(None)  # the run's clock until it starts
        self.p = Planner(options, self, self.progress, self.pins, self.seeds,
                         self.client.index_url, self._now)
        self.p.python = options.target.python if self.workers.local else None
        # what builds must not see: OUT, the seed stores, the home folder, and the folder
        # of the signing key
        key = (options.signing_key.absolute().parent,) if options.signing_key else ()
        self.p.hidden = tuple(str(p) for p in (self.layout.root, *options.seed_stores,
                                                Path.home(), *key))
        self._inflight: dict[Future[Any], Job] = {}
        self._building = 0
        self._fetches = 0
        self._fetching_backends: set[NodeId] = set()  # real downloads of LIKELY_BACKENDS
        self._bytecode: Bytecode | None = None  # compiles sources ahead (run() makes it)
        self._keep_until: float | None = None  # when a worker kept for a download is freed
        #: when the downloads under way (the planner's and those ahead) began
        self._download_began: dict[NodeId, float] = {}
        #: git sources whose sdist was made, to be read (see adopt_sdist)
        self._sdists_made: set[NodeId] = set()
        self._cleaning: dict[str, Future[None]] = {}  # unit folders being removed
        # what fetching ahead has on the pools (until the planner takes it over)
        self._ahead_inflight: dict[Future[Any], Job] = {}
        self._ahead_pages: dict[NormalizedName, Future[Any]] = {}  # not taken over
        self._ahead_fetching: dict[NodeId, Future[Any]] = {}
        self._ahead_stop = threading.Event()  # the run is over: no more reading ahead
        self.fetching = Fetching(self.store, self.client, options.hashes,
                                 self.progress.warning, self._ahead_stop)
        # the wheels shipped, by project: what their index pages list (write_page)
        self._shipped_wheels: dict[NormalizedName, dict[str, tuple[str, str | None]]] = {}

    def _now(self) -> float:
        """The run's clock (seconds since it started)."""
        return self.events.now()

    # -- entry point -------------------------------------------------------------------

    def run(self) -> Result:
        if not self.pins.known:  # a first run into this output: it asks the index at once
            self.client.warm()
        with self.store.locked():
            for note in self.store.open_run():
                self.progress.emit(Warn(note))
            self.store.forget_stamp()
            kept = self.store.snapshot() if self.o.restore_on_failure else None
            self.p.durations = self.store.load_durations()
            self.events = self.store.event_log()
            self.progress.subscribe(self.events)
            self.progress.emit(RunStarted(
                targets=[str(r) for r in self.o.requirements], jobs=self.o.jobs,
                strict=self.o.run.strict, workers=self.workers.describe(),
                wall=format_time(datetime.now(UTC))))
            if self.o.lock_skipped:
                self.progress.emit(Note(_skipped_note(self.o.lock_skipped)))
            ok = False
            try:
                self.git_resolved = git_pins(self.o, self.store, self.progress.warning).git
                self.p.use_git(self.git_resolved)
                with contextlib.ExitStack() as stack:
                    # backends' warnings go to their logs until the last build has ended
                    stack.enter_context(backend.backend_warnings_to_logs())
                    interrupted = self._open_pools(stack)
                    try:
                        for name in LIKELY_BACKENDS:  # not again into an output that
                            if not self.pins.known or name in self.pins.known:  # used none
                                self._run_ahead(self.p.ahead.want(Requirement(name), 0))
                        self._loop()
                        ok = True
                    except BaseException as exc:
                        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: stop at once
                            interrupted.append(True)
                            self.workers.interrupt()
                        raise
            finally:
                self.progress.emit(RunFinished(ok=ok, built=self.p.built, reused=self.p.reused,
                                               failed=len(self.p.failed),
                                               duration=round(self.events.now(), 3)))
                self.events.close()
                self.store.save_durations(self.p.durations)
                if kept is not None and not ok:  # OUT as the earlier run left it
                    self.store.restore(kept)
                else:
                    try:
                        self._write_outputs(ok)
                    except BaseException:
                        if kept is not None:
                            self.store.restore(kept)
                        raise
                    if kept is not None:
                        self.store.drop(kept)
            if self.o.stamp_key is not None and not self.p.unpinned:
                self.store.write_stamp(self.o.stamp_key, len(self.p.records))
        unused = tuple(self.o.settings.unused(
            (n.name, n.version) for n in self.p.graph.nodes))
        return Result(tuple(self.p.records), self.p.graph, self.p.built, self.p.reused,
                      tuple(r.report for r in self.p.runs if r.twin is None), unused,
                      tuple(self.p.prebuilt))

    def _open_pools(self, stack: contextlib.ExitStack) -> list[bool]:
        """Start the run's threads and helper processes, each with its closing step on
        ``stack``: they close in the reverse order, every step even when one before it
        raises.  Returns a flag list the run appends to when it is interrupted: then
        nothing is waited for (builds were killed, downloads are dropped)."""
        interrupted: list[bool] = []

        def shut(pool: ThreadPoolExecutor, drop_queued: bool = True) -> None:
            pool.shutdown(wait=not interrupted, cancel_futures=drop_queued or bool(interrupted))

        if self.store.remote is not None:  # its connections
            stack.callback(self.store.remote.close)
        # closed last: the run's folder in memory, the compiler, the workers, the readers
        memory = scratch.memory_folder(builds=self.workers.capacity()) \
            if self.workers.local else None
        if memory is not None:
            stack.callback(scratch.remove, memory)
        self.store.memory = memory if self.o.work_in_memory else None
        self._bytecode = None
        if self.workers.local and bytecode_enabled():
            with contextlib.suppress(OSError):  # no folder for it: builds compile
                self._bytecode = Bytecode(
                    memory / "bytecode" if memory is not None
                    else self.layout.state / "incoming" / "bytecode",
                    self.o.target.python, self.o.archive_limits)
                stack.callback(self._bytecode.close)
                self.p.bytecode = str(self._bytecode.folder)
        stack.callback(self.workers.close)
        stack.callback(self.fetching.ahead_reader.close)
        # sdists' facts are read by a helper process, off this one's interpreter lock
        self.store.reader = self._head.reader()
        stack.callback(self.store.close_reader)
        self.store.reader.start()
        if not self.pins.known and self.p.ahead.enabled:  # it will read ahead at once
            self.fetching.ahead_reader.start()
        # removing a finished build's folder (a whole environment) takes a tenth of a
        # second: off the thread that dispatches the next build
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clean")
        stack.callback(shut, self._cleaner, False)  # folders queued for removal go too
        self._publisher = ThreadPoolExecutor(max_workers=PUBLISHERS,
                                             thread_name_prefix="publish")
        stack.callback(shut, self._publisher)
        stack.callback(lambda: self.store.drop_ahead(
            n for n in self.p.ahead.depth if n not in self.p.states))
        # index pages have threads of their own: a burst of hundreds of pages (a package
        # with many requirements) must not hold up the downloads of the sources whose
        # pages came first
        self._pages = ThreadPoolExecutor(max_workers=PAGES, thread_name_prefix="pages")
        stack.callback(shut, self._pages)
        # the planner's own fetch of an sdist fetched ahead (a move and a cached read)
        # need not queue behind the downloads on the I/O threads
        self._handoff = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handoff")
        stack.callback(shut, self._handoff)
        self._io = ThreadPoolExecutor(max_workers=DOWNLOADS, thread_name_prefix="io")
        stack.callback(shut, self._io)
        # closed first: what is queued is dropped (builds already running finish, their
        # logs complete, unless the run was interrupted); downloads ahead stop unpacking
        stack.callback(self._ahead_stop.set)
        stack.callback(lambda: [f.cancel() for f in self._inflight])
        if self.workers.local and self.store.cache.empty():
            # a first run into this output builds: the empty environment every build
            # starts from is made while the first pages and sources arrive
            self._cleaner.submit(backend.warm_template, self.o.target.python,
                                 backend.BuildSettings(0))
        return interrupted

    def _loop(self) -> None:
        p = self.p
        while True:
            top = p.plan(settle=not self._inflight)
            self._dispatch()
            if top.complete and not self._inflight:
                return
            if not self._inflight:
                p.replan_all()  # nothing is running: make sure nothing was missed
                top = p.plan(settle=True)
                self._dispatch()
                if top.complete and not self._inflight:
                    return
                if not self._inflight and p.holding:  # discovery is over: say it all
                    raise p.refusal()
                if not self._inflight:
                    failure = p.failure_summary(str(self.layout.logs)) if p.failed else None
                    p.cycles.deadlock(failure, self._stall_state())
                    p.replan_all()
                continue
            self.events.flush()
            due = p.top_due
            if self._keep_until is not None:  # a worker kept for a download: not for long
                keep = max(self._keep_until - self.events.now(), 0.0)
                due = keep if due is None else min(due, keep)
            done, _ = wait([*self._inflight, *self._ahead_inflight, self.fetching.landing],
                           timeout=due, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut is self.fetching.landing:  # a likely backend's bytes are in
                    self.fetching.rearm()
                    continue
                if fut in self._ahead_inflight:  # speculative: never fails the run
                    self._ahead_done(fut, self._ahead_inflight.pop(fut))
                    continue
                self._completed(fut, self._inflight.pop(fut))

    def _completed(self, fut: Future[Any], job: Job) -> None:
        """A job the run waits for is over: take in its result."""
        if isinstance(job, FetchJob | AheadFetchJob):
            self._download_began.pop(job.node, None)
        if isinstance(job, FetchJob):
            self._fetches -= 1
            self._fetching_backends.discard(job.node)
            self.fetching.done(job.node)
        try:
            match job:
                case TaskJob():
                    self._building -= 1
                    self.p.task_done(job.pending, self._outcome(fut, job.pending), job.since)
                case PublishJob():
                    self._published(job.publishing, fut)
                case AheadFetchJob():  # a download ahead the planner waited for
                    self._ahead_done(fut, job)
                    self._submit_fetch(job.node, at_hand=fut.exception() is None
                                       and fut.result() is not None)
                case PageJob():
                    self.p.page_arrived(job.name, fut.result(), job.since)
                case FetchJob():
                    self._fetched(job, fut.result())
                case PrebuiltJob():
                    self.p.prebuilt_fetched(job.node, *fut.result())
        except WheelstrapError as exc:
            if isinstance(job, PageJob):
                raise
            failed = job.publishing.node if isinstance(job, PublishJob) \
                else job.pending.node if isinstance(job, TaskJob) else job.node
            if not self.o.keep_going:  # the hint says when --keep-going would skip it
                self.p.explain_other_version(failed, exc)
                raise
            self.p.fail(failed, exc)

    def _outcome(self, fut: Future[Any], pending: Pending) -> Outcome:
        try:
            value: Outcome = fut.result()
        except WheelstrapError as exc:
            raise exc.with_chain(self.p.states[pending.node].chain) from None
        except Exception as exc:
            error = self.workers.failure(exc, f"The build of {pending.spec.label}")
            if error is None:
                raise
            raise error.with_chain(self.p.states[pending.node].chain) from exc
        return value

    def _dispatch(self) -> None:
        """Start downloads and ready builds while there is room, those with the longest
        remaining path first."""
        rank = self.p.ranker()
        self._keep_until = None  # set again below while a worker is kept
        if self._ahead_fetching and self.p.to_fetch:
            self.p.to_fetch = [n for n in self.p.to_fetch if not self._promote_fetch(n)]
        if self.p.ahead.staged and self.p.to_fetch:  # at hand already: no line needed
            for node in [n for n in self.p.to_fetch if n in self.p.ahead.staged]:
                self.p.to_fetch.remove(node)
                self._submit_fetch(node, at_hand=True)
        free = self._download_lines() - self._fetches - len(self._ahead_fetching)
        if not self._fetches:
            # Downloads ahead may hold every line, but the planner waits only on its own
            # downloads (it takes one ahead over when it needs that very one): one of its
            # own always runs, or the run would stall behind speculation.
            free = max(free, 1)
        if self.p.to_fetch and free > 0:
            # what a build environment needs (a backend, its helpers) first: until its
            # source is read, nobody knows the chain below it
            self.p.to_fetch.sort(key=lambda n: (n not in self.p.in_build_envs, -rank(n)))
            for node in self.p.to_fetch[:free]:
                self._submit_fetch(node)
            del self.p.to_fetch[:free]
        if not self.p.to_fetch:
            self._dispatch_ahead()
        if not self.p.ready:
            return
        free = self.workers.capacity() - self._building
        if free <= 0:
            return
        if self.p.top_due is not None:  # a build would start: the targets' closure first,
            self.p.plan(settle=True)  # so that the pages it asks for are awaited
        if not self.p.may_build:  # see may_build and refusal
            return
        self.p.ready.sort(key=lambda p: -rank(p.node))
        free -= self._kept_for_backends(rank, rank(self.p.ready[0].node), free)
        for pending in self.p.ready[:free]:
            self._submit(pending)
        del self.p.ready[:free]

    def _kept_for_backends(self, rank: Callable[[NodeId], float], best: float,
                           free: int) -> int:
        """How many of ``free`` workers to keep for likely backends this run needs whose
        sdists are still downloading, ranked above the best ready build (``best``).

        Such a backend builds with nothing but itself (setuptools and flit-core do), so
        it is ready the moment its sdist is at hand; it heads the longest chain of a
        typical tree.  A worker given to a lesser build a moment before would hold it
        up for that whole build (0.5 s on ``bootstrap requests``); keeping the worker
        costs at most the rest of the download, and only for
        :data:`KEEP_FOR_DOWNLOAD` seconds of it."""
        now = self.events.now()
        kept = 0
        for node in self._downloading_backends():
            since = self._download_began.get(node, now)
            if kept < free and now - since < KEEP_FOR_DOWNLOAD and rank(node) > best:
                kept += 1
                self._keep_till(since + KEEP_FOR_DOWNLOAD)
        if kept == 0 and free > 0:
            kept += self._kept_ahead(best, now)
        return kept

    def _kept_ahead(self, best: float, now: float) -> int:
        """One worker kept for a likely backend fetched ahead that no sdist read so far
        names, while the run is still learning its tree: one of its next sdists will,
        most likely (setuptools heads the longest chain of most trees), and a worker
        given to a short build a moment before would hold it up for that whole build.
        In ``bootstrap hatchling`` flit-core (a fifth of a second to build) took the
        second worker 70 ms before trove-classifiers' sdist named setuptools, which
        then waited for it 80 ms.

        Only with two workers or more, for :data:`KEEP_FOR_DOWNLOAD` seconds from its
        download's start at most, while sdists the planner needs are still being
        fetched and read, and when what the index says of its size makes it a longer
        build than the best one ready (``best``)."""
        if self.workers.capacity() < 2 or not (self._fetches or self.p.to_fetch):
            return 0
        for node, (since, size) in sorted(self.p.ahead.backends.items(),
                                          key=lambda item: backend_rank(item[0].name)):
            if node in self.p.states or now - since >= KEEP_FOR_DOWNLOAD:
                continue
            guess = sum(self.p.durations.expected(node.name, node.version, phase, size)
                        for phase in ("prepare", "build"))
            if guess > best:
                self._keep_till(since + KEEP_FOR_DOWNLOAD)
                return 1
        return 0

    def _keep_till(self, until: float) -> None:
        """The loop looks again at a kept worker by ``until``."""
        self._keep_until = until if self._keep_until is None else min(self._keep_until, until)

    def _downloading_backends(self) -> list[NodeId]:
        """Likely backends the planner needs whose sdists are downloading: its own
        downloads, and those ahead it waits for."""
        waited = [n for n, fut in self._ahead_fetching.items()
                  if n.name in LIKELY_BACKENDS and fut in self._inflight]
        return sorted({*self._fetching_backends, *waited})

    def _download_lines(self) -> int:
        """How many sdists may download at once now (see run/fetching.py)."""
        return self.fetching.lines(self._fetching_backends, self._ahead_fetching)

    def _submit_fetch(self, node: NodeId, at_hand: bool = False) -> None:
        """Fetch ``node``'s sdist and read its facts; ``at_hand``: it was fetched ahead,
        so this is a move and a cached read, done on a thread of its own."""
        st = self.p.states[node]
        if not at_hand:
            self._metadata_ahead(st)
        self._fetches += 1
        if node.name in LIKELY_BACKENDS:
            self._fetching_backends.add(node)
        if node not in self._sdists_made:  # reading the sdist just made: no fetch
            self.progress.emit(FetchStarted(str(node)))
        now = self.events.now()
        self._download_began[node] = now
        pool = self._handoff if at_hand else self._io
        self._inflight[pool.submit(self.fetching.fetch, st)] = FetchJob(node, now)

    def _submit(self, pending: Pending) -> None:
        st = self.p.states[pending.node]
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        files = [(st.sdist_sha256, st.sdist_path), *((a.sha256, a.path) for a in pending.env)]
        inputs = self.workers.inputs(files)
        workdir = (str(self.store.unit_dir(pending.node, pending.spec.unit, st.sdist_size))
                   if self.workers.local else None)
        cleaning = self._cleaning.pop(workdir, None) if workdir is not None else None
        if cleaning is not None:  # the same folder again: let its removal finish first
            cleaning.result()
        self._building += 1
        self.progress.emit(TaskStarted(self.p.task(pending.spec), then=pending.then is not None))
        since = self.events.now()
        fut = self.workers.executor.submit(run_task, pending.spec, inputs, workdir,
                                           pending.then)
        self._inflight[fut] = TaskJob(pending, since)


    def _published(self, p: Publishing, fut: Future[WheelRef]) -> None:
        """A built wheel was checked and placed (or refused): the build is done."""
        self._building -= p.held
        try:
            avail = fut.result()
        except WheelstrapError as exc:
            self.progress.emit(TaskFailed(p.task, p.worker, p.duration, exc.message,
                                          rounded(p.timings)))
            self.p.states[p.node].units[p.pending.spec.unit].busy = False
            raise
        p.timings["publish"] = self.events.now() - p.since
        self.progress.emit(TaskFinished(p.task, p.worker, p.duration, rounded(p.timings)))
        if self.workers.local:
            unit = p.pending.spec.unit
            folder = str(self.store.unit_dir(p.node, unit))
            self._cleaning[folder] = self._cleaner.submit(self.store.clean_unit, p.node, unit)
        self.p.published(p.pending, avail)

    def _fetched(self, job: FetchJob, got: Fetched) -> None:
        ahead = self.p.fetched(job.node, got)
        st = self.p.states[job.node]
        if self._bytecode is not None and st.id.name in LIKELY_BACKENDS:
            # what most build environments hold: compiled once, long before its wheel
            self._bytecode.start(st.id.name, st.id.version, got.sdist)
        took = round(self.events.now() - job.since, 4)
        if job.node in self._sdists_made:  # a git tree's sdist, made and now read
            self._sdists_made.discard(job.node)
            self.progress.emit(SdistMade(str(st.id), got.sdist.name, got.sha256,
                                         st.sdist_size or 0, took))
        else:
            source = st.hooks.settings.source
            self.progress.emit(Downloaded(
                str(st.id), took, st.sdist_size or 0,
                git=source.commit if got.make_sdist and isinstance(source, GitSource)
                else None))
        self._run_ahead(ahead)

    def _stall_state(self) -> str:
        """The coordinator's side of a stall, for the report of a bug."""
        return (f"building {self._building}, fetches {self._fetches}, ready "
                f"{[str(p.node) for p in self.p.ready]}, to fetch "
                f"{[str(n) for n in self.p.to_fetch]}, ahead fetching "
                f"{[str(n) for n in self._ahead_fetching]}")

    def _run_ahead(self, commands: Iterable[AheadCommand]) -> None:
        """Start on the pools what fetching ahead decided."""
        for cmd in commands:
            now = self.events.now()
            fut: Future[Any]
            match cmd:
                case AskPage(name=name):
                    fut = self._pages.submit(self.client.project_page, name)
                    self._ahead_pages[name] = fut
                    self._ahead_inflight[fut] = PageJob(name, now)
                case FetchAhead(node=node, candidate=c, hooks=hooks):
                    self._download_began[node] = now
                    fut = self._io.submit(self.fetching.fetch_ahead, node, c, hooks)
                    self._ahead_fetching[node] = fut
                    self._ahead_inflight[fut] = AheadFetchJob(node, now)
                case AskMetadata(node=node, url=url, sha256=sha256):
                    fut = self._pages.submit(self.client.core_metadata, url, sha256)
                    self._ahead_inflight[fut] = MetadataJob(node, now)

    def _dispatch_ahead(self) -> None:
        """Start downloads ahead, nearest first, on the lines real downloads leave."""
        def room() -> bool:
            return self._fetches + len(self._ahead_fetching) < self._download_lines()

        self._run_ahead(self.p.ahead.downloads(room, self.events.now()))

    def _metadata_ahead(self, st: NodeState) -> None:
        ask = self.p.ahead.metadata(st.id, st.hooks, st.candidate.file.size,
                                   self.p.pages.get(st.id.name))
        if ask is not None:
            self._run_ahead([ask])

    def _promote_fetch(self, node: NodeId) -> bool:
        """The planner wants ``node``'s sdist: wait for its download ahead, if any."""
        fut = self._ahead_fetching.get(node)
        if fut is None or fut not in self._ahead_inflight:
            return False
        self._inflight[fut] = self._ahead_inflight.pop(fut)
        return True

    def _ahead_done(self, fut: Future[Any], job: Job) -> None:
        """A page, a core metadata file or a download ahead finished; a failure is
        dropped."""
        if isinstance(job, MetadataJob):
            st = self.p.states.get(job.node)
            try:
                body = fut.result()
            except Exception:
                return
            if body is None or st is None:
                return
            reqs = st.hooks.requires(Requirement(r) for r in declared_requires(body))
            self.progress.emit(MetadataRead(str(job.node), len(reqs),
                                            round(self.events.now() - job.since, 4)))
            self._run_ahead(self.p.ahead.want_all(reqs, 1))
            return
        if isinstance(job, PageJob):
            self._ahead_pages.pop(job.name, None)
            try:
                page = fut.result()
            except Exception:
                self.p.ahead.page_failed(job.name)
                return
            self.p.page_arrived(job.name, page, job.since)
            return
        assert isinstance(job, AheadFetchJob)
        self._ahead_fetching.pop(job.node, None)
        self._download_began.pop(job.node, None)
        self.fetching.done(job.node)
        try:
            value = fut.result()
        except Exception:
            value = None
        if value is None:
            self.p.ahead.downloaded(job.node, None)
            return
        size, reqs = value
        self.progress.emit(Downloaded(str(job.node), round(self.events.now() - job.since, 4),
                                      size, ahead=True))
        self._run_ahead(self.p.ahead.downloaded(job.node, reqs))

    # -- the planner's effects -------------------------------------------------------

    def take_over_page(self, name: NormalizedName) -> bool:
        fut = self._ahead_pages.pop(name, None)
        if fut is None:
            return False
        self._inflight[fut] = self._ahead_inflight.pop(fut)  # the run waits for it now
        return True

    def ask_page(self, name: NormalizedName) -> None:
        fut = self._pages.submit(self.client.project_page, name)
        self._inflight[fut] = PageJob(name, self.events.now())

    def fetch_prebuilt(self, node: NodeId, files: Sequence[ProjectFile],
                       prebuilt: Prebuilt) -> None:
        fut = self._io.submit(self.store.fetch_prebuilt, self.client, files, node.name,
                              node.version, prebuilt)
        self._inflight[fut] = PrebuiltJob(node, self.events.now())

    def publish(self, pending: Pending, outcome: BuiltOutcome, chain: tuple[str, ...],
                task: Task, timings: dict[str, float], held: bool) -> None:
        self._building += held
        fut = self._publisher.submit(self.store.publish, pending.spec, outcome, chain)
        self._inflight[fut] = PublishJob(Publishing(
            pending, timings, task, outcome.report.worker,
            round(timings.get("total", 0.0), 4), self.events.now(), held))

    def dynamic(self, spec: BuildSpec) -> tuple[str, ...] | None:
        return self.store.dynamic(spec)

    def remember_dynamic(self, spec: BuildSpec, raw: tuple[str, ...]) -> None:
        self.store.remember_dynamic(spec, raw)

    def reuse(self, spec: BuildSpec) -> WheelRef | None:
        return self.store.reuse(spec)

    def failure(self, spec: BuildSpec, outcome: Failed, chain: tuple[str, ...]
                ) -> WheelstrapError:
        return self.store.failure(spec, outcome, chain)

    def inspect(self, node: NodeId, st: NodeState) -> srcpack.PackPlan | srcpack.NotPure:
        assert st.sdist_path is not None
        root, _ = self.store.source_tree(node, st.sdist_path, st.hooks)
        try:
            plan = srcpack.inspect(root, node.name, node.version)
        except SourceError as exc:  # a layout pointing outside the sdist: not packable
            return srcpack.NotPure((exc.message,))
        if isinstance(plan, srcpack.PackPlan):
            edited = st.hooks.requires(Requirement(r) for r in plan.requires_dist)
            plan = replace(plan, requires_dist=tuple(str(r) for r in edited))
        return plan

    def pack_stage0(self, plan: srcpack.PackPlan, run_key: str,
                    source_date_epoch: int) -> WheelRef:
        return self.store.pack_stage0(plan, run_key, source_date_epoch)

    def ship(self, node: NodeId, wheel: WheelRef, key: UnitKey) -> WheelRef:
        return self.store.ship(node, wheel, key)

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None, early: bool) -> None:
        self.provenance.shipped(record, cycle)
        if early:
            self.provenance.write_early(record, self.seeds, self._publisher)

    def built(self, record: BuildRecord, wheel: WheelRef) -> None:
        self.provenance.built(record, wheel)

    def clean_node(self, node: NodeId) -> None:
        self.store.clean_node(node)

    def adopt_sdist(self, pending: Pending, outcome: BuiltOutcome) -> None:
        node = pending.node
        source = self.p.states[node].hooks.settings.source
        if not isinstance(source, GitSource):
            raise InternalError(f"{node}: an sdist was made without a git source")
        self.store.adopt_git_sdist(source, node.name, node.version, outcome.filename,
                                   outcome.path, outcome.data)
        self._sdists_made.add(node)  # its next fetch reads it: sdist-made, not a download
        if self.workers.local:
            self.store.clean_unit(node, pending.spec.unit)

    def write_page(self, name: NormalizedName, wheel: WheelRef) -> None:
        """Write the index page of ``name`` as its wheel ships, in the background (the
        thread that removes finished build folders: off every build's way), rather than
        with the documents at the end of the run; the end writes only what changed."""
        known = self._shipped_wheels.setdefault(name, {})
        known[wheel.path.name] = (wheel.sha256, wheel.info.requires_python)
        self._cleaner.submit(self.store.write_project_page, name, dict(known))

    def _write_outputs(self, ok: bool) -> None:
        complete = ok and self.p.top is not None and self.p.top.complete and not self.p.failed
        problem = self.store.write_documents(Documents(
            graph=self.p.graph.to_json(), records=in_build_order(self.p.records),
            target=self.o.target.describe(),
            cycles=[r.report for r in self.p.runs if r.twin is None] + self.p.unbroken,
            index={r.wheel: (r.sha256, st.final.info.requires_python) for r in self.p.records
                   if (st := self.p.states.get(NodeId(canonicalize_name(r.name), r.version)))
                   and st.final is not None},
            failures=self.p.failure_docs(),
            blocked=[{"name": n.name, "version": n.version, "because": str(dep)}
                     for n, dep in sorted(self.p.blocked.items())],
            constraints=[(n.name, n.version) for n in self.p.top_env.nodes]
            if complete and self.p.top_env is not None else None,
            resolution=_run_resolution(self.o, self.p.held_back()),
            invocation=invocation_record(self.o, self.git_resolved)),
            self.pins, self.seeds)
        if problem is not None:
            self.progress.emit(Warn(problem))


def _no_git_under_hashes(options: Options) -> None:
    """pip's hash-checking mode (a ``--hash`` in the requirement files) pins every sdist by
    its hash; an sdist made from a git commit has no hash anyone could pin beforehand, so,
    as pip does with VCS requirements, the two do not go together."""
    if not options.hashes.required:
        return
    named = sorted({p.name for p in options.git}
                   | {str(name) for name, _, _ in options.settings.git_sources()}
                   | {r.name for r in options.requirements
                      if r.url is not None and r.url.startswith("git+")})
    if named:
        raise UserInputError(
            f"The requirement files give --hash (pip's hash-checking mode), and "
            f"{', '.join(named)} would be built from a git commit, whose sdist has no hash "
            "to check: the two do not go together.",
            hint="Pin those packages to a release on the index with its --hash, or drop "
            "the --hash lines and rely on the pinned commits.")


def _run_resolution(options: Options, held_back: list[dict[str, Any]]) -> dict[str, Any]:
    """How versions were chosen, for the run record (build-order.json): the release-age
    rules with the time they were judged at, the releases they held back that the run
    would otherwise have taken (see :meth:`Planner.held_back`), whether every allowed
    version of the targets was built, and the lock entries whose markers leave them out."""
    rule = options.release_age
    judged = rule is not None and (rule.active or options.settings.sets_release_age)
    return {"min_release_age_days": rule.min_days if rule else None,
            "max_release_age_days": rule.max_days if rule else None,
            # the time only when a rule used it: otherwise the record of a run that
            # chose by no age stays the same from one run to the next
            "now": format_time(rule.now) if rule and judged else None,
            "held_back": held_back,
            "multiple_versions": options.multiple_versions,
            "lock_skipped": [e.to_json() for e in options.lock_skipped]}


def _skipped_note(skipped: Sequence[SkippedEntry]) -> str:
    """One line: the lock entries left out for this target."""
    shown = ", ".join(e.label for e in skipped[:20])
    more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    return (f"{len(skipped)} locked package{'s' if len(skipped) > 1 else ''} not for this "
            f"target (their markers leave them out; see build-order.json): {shown}{more}")


def _statement_resolution(options: Options) -> dict[str, Any] | None:
    """The release-age rules for provenance statements, without the time they were judged
    at: a statement depends only on the build's inputs and must not change with the hour
    it is written at (the sdist it names, by hash, already shows what the rule chose).
    None when no rule applies (statements as without one).  A package's own minimum age
    is in its settings, which the statement holds too."""
    rule = options.release_age
    if rule is None or not rule.active:
        return None
    return rule.rule_json()


def bootstrap(options: Options, reporter: Reporter = NULL_REPORTER,
              workers: Workers | None = None, head: HeadStart | None = None) -> Result:
    """Build every wheel of the tree rooted at ``options.requirements`` from source;
    ``head``: helpers the command started for it (:mod:`wheelstrap.run.headstart`)."""
    out = options.output
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output directory {out} is a file.",
                             hint="Pass -o a directory (it is created when missing).")
    client = IndexClient(options.index_url, retries=options.retries,
                         request_deadline=options.index_timeout)
    try:
        return Coordinator(options, reporter, client, workers, head).run()
    except OSError as exc:  # the disk, not us: full, read-only, a path that is not a folder
        where = exc.filename or out
        raise UserInputError(
            f"wheelstrap could not write or read {where}: {exc.strerror or exc}.",
            hint=f"Free some space or fix the permissions of {out}, or pass another -o. "
            "Every file in it is written atomically, so it keeps its last good state.",
        ) from exc
    finally:
        client.close()
