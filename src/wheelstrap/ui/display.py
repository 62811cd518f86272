"""How the CLI draws a run's progress: plain lines, or a live view on a terminal.

Only :mod:`wheelstrap.ui.cli` uses this module (it is part of the command line, the one
layer that writes to the user).  Both reporters take a verbosity:

- ``QUIET`` (``-q``): warnings only (errors and the final summary are the CLI's);
- ``NORMAL``: also builds started and finished, cycle stages and notes;
- ``VERBOSE`` (``-v``): also index pages, sdist downloads, prepare steps, discoveries,
  and how long each step took.

:class:`PlainReporter` writes one line per event, free of control characters, for logs
and pipes.  :class:`LiveReporter` prints the same lines above a live view drawn with rich
(counts, the builds running now with their elapsed time, cycle stages, an estimate of the
time left), refreshed by rich's own thread; it is used as a context manager around the run.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING

from wheelstrap.model.progress import Reporter

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

QUIET, NORMAL, VERBOSE = 0, 1, 2

#: Builds that must have finished before the time left is estimated.
ETA_HISTORY = 3

#: Most running builds, and most cycles, the live view lists (the oldest builds, the
#: cycles that moved last).
SHOWN = 10

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with every control character but newline shown as an escape."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = max(int(seconds), 0)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def node_of(label: str) -> str:
    """The ``name version`` of a unit label (``name version (stage N)``)."""
    return label.split(" (", 1)[0]


@dataclass
class Running:
    action: str
    since: float


class LineReporter(Reporter):
    """Decides which events make a line, at which verbosity; subclasses write them."""

    def __init__(self, verbosity: int = NORMAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verbosity = verbosity
        self.clock = clock
        self._since: dict[tuple[str, str], float] = {}

    # output (subclasses) ------------------------------------------------------------

    def _line(self, text: str) -> None:
        raise NotImplementedError

    def _warn(self, text: str) -> None:
        raise NotImplementedError

    def _say(self, level: int, text: str) -> None:
        if self.verbosity >= level:
            self._line(text)

    def _took(self, node: str, action: str) -> str:
        since = self._since.pop((node, action), None)
        if since is None or self.verbosity < VERBOSE:
            return ""
        return f" in {self.clock() - since:.1f}s"

    # events ---------------------------------------------------------------------------

    def resolving(self, name: str) -> None:
        self._say(VERBOSE, f"resolving {name}")

    def discovered(self, node: str) -> None:
        self._say(VERBOSE, f"discovered {node}")

    def starting(self, node: str, action: str) -> None:
        self._since[(node, action)] = self.clock()
        self._say(NORMAL if action == "build" else VERBOSE, f"{action} {node}")

    def finished(self, node: str, action: str, detail: str = "") -> None:
        took = self._took(node, action)
        if action == "build":
            self._say(NORMAL, f"{'reused' if detail else 'built'} {node}{took}")
        else:
            done = {"fetch": "fetched", "prepare": "prepared"}.get(action, f"{action} done:")
            self._say(VERBOSE, f"{done} {node}{f' ({detail})' if detail else ''}{took}")

    def failed(self, node: str, message: str) -> None:
        self._since = {k: v for k, v in self._since.items() if node_of(k[0]) != node}
        # the planner's warning that follows says it, with the message

    def stage(self, cycle: str, stage: int, status: str) -> None:
        if status == "started" and stage > 1:
            text = f"{cycle}: starting stage {stage} from stage-{stage - 1} wheels only"
        else:
            text = f"{cycle}: stage {stage} {status}"
        # a shipped cycle is announced by the planner's own note (fixed point or not)
        self._say(VERBOSE if status == "shipped" else NORMAL, text)

    def warning(self, message: str) -> None:
        self._warn(message)

    def info(self, message: str) -> None:
        self._say(NORMAL, message)


class PlainReporter(LineReporter):
    """One plain line per event on a stream (stderr by default): no colour, no control
    character, nothing redrawn."""

    def __init__(self, verbosity: int = NORMAL, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(verbosity, clock)
        self.stream = stream
        self._lock = threading.Lock()  # warnings may come from I/O threads

    def _write(self, text: str) -> None:
        import click

        with self._lock:
            click.echo(clean(text), file=self.stream, err=self.stream is None, color=False)

    def _line(self, text: str) -> None:
        self._write(f"wheelstrap: {text}")

    def _warn(self, text: str) -> None:
        self._write(f"warning: {text}")

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None


class LiveReporter(PlainReporter):
    """The lines of :class:`PlainReporter` above a live view of the run (rich).

    Reporter methods are called by the planner's thread (warnings also by I/O threads);
    rich redraws the view from its own thread.  Both only touch the state below under
    ``_lock``, and nothing is printed while it is held (rich takes its own lock to print,
    and holds it while it asks for the view)."""

    def __init__(self, verbosity: int = NORMAL, console: Console | None = None,
                 workers: int = 1, clock: Callable[[], float] = time.monotonic,
                 refresh_per_second: float = 4) -> None:
        super().__init__(verbosity, None, clock)
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=True, highlight=False)
        self.workers = max(workers, 1)
        self.known: set[str] = set()
        self.built: set[str] = set()
        self.reused: set[str] = set()
        self.failures: set[str] = set()
        self.running: dict[str, Running] = {}
        self.stages: dict[str, tuple[int, str]] = {}
        self.durations: list[float] = []
        self.began = clock()
        self.live: Live = Live(console=self.console, get_renderable=self.render,
                               refresh_per_second=refresh_per_second, transient=True,
                               redirect_stdout=False)  # stdout may be a pipe: keep it apart

    def __enter__(self) -> LiveReporter:
        self.live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.stop()

    def refresh(self) -> None:
        """Redraw now (rich also redraws on its own)."""
        self.live.refresh()

    def _line(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(clean(f"wheelstrap: {text}")), soft_wrap=True)

    def _warn(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("warning:", "yellow"), " ", clean(text)),
                           soft_wrap=True)

    # events ---------------------------------------------------------------------------

    def discovered(self, node: str) -> None:
        with self._lock:
            self.known.add(node)
        super().discovered(node)

    def starting(self, node: str, action: str) -> None:
        if action in ("prepare", "build"):
            with self._lock:
                self.running[node] = Running(action, self.clock())
        super().starting(node, action)

    def finished(self, node: str, action: str, detail: str = "") -> None:
        with self._lock:
            self.running.pop(node, None)
            if action == "build":
                (self.reused if detail else self.built).add(node_of(node))
                # since the build was announced (a prepare may announce its build too)
                since = self._since.get((node, "build"))
                if since is not None and not detail:
                    self.durations.append(self.clock() - since)
        super().finished(node, action, detail)

    def failed(self, node: str, message: str) -> None:
        with self._lock:
            self.failures.add(node_of(node))
            for label in [k for k in self.running if node_of(k) == node_of(node)]:
                del self.running[label]
        super().failed(node, message)

    def stage(self, cycle: str, stage: int, status: str) -> None:
        with self._lock:
            self.stages.pop(cycle, None)  # the latest last
            self.stages[cycle] = (stage, status)
        super().stage(cycle, stage, status)

    # the view -------------------------------------------------------------------------

    def estimate(self) -> float | None:
        """Seconds left: the mean build time, times the packages not done yet, over the
        workers that can take them.  None until :data:`ETA_HISTORY` builds have finished.
        Call with ``_lock`` held."""
        if len(self.durations) < ETA_HISTORY:
            return None
        left = len(self.known - self.built - self.reused - self.failures)
        if left <= 0:
            return None
        mean = sum(self.durations) / len(self.durations)
        return mean * left / min(self.workers, left)

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            now = self.clock()
            known = len(self.known)
            done = len(self.built | self.reused | self.failures)
            head = Table.grid(padding=(0, 1))
            head.add_row(
                ProgressBar(total=max(known, 1), completed=done, width=24),
                Text.assemble(
                    (f"{done}/{known}", "bold"), " packages done: ",
                    (f"{len(self.built)} built", "green"), ", ",
                    (f"{len(self.reused)} reused", "cyan"), ", ",
                    (f"{len(self.failures)} failed", "red" if self.failures else ""),
                    f"; {len(self.running)} running; {duration(now - self.began)}"))
            rows: list[RenderableType] = [head]
            builds = Table.grid(padding=(0, 2))
            running = sorted(self.running.items(), key=lambda kv: kv[1].since)
            for label, run in running[:SHOWN]:
                builds.add_row(Text(f"  {run.action}", "dim"), Text(clean(label)),
                               Text(duration(now - run.since), "yellow"))
            if running:
                rows.append(builds)
            if len(running) > SHOWN:
                rows.append(Text(f"  and {len(running) - SHOWN} more", "dim"))
            for cycle, (stage, status) in list(self.stages.items())[-SHOWN:]:
                rows.append(Text(clean(f"  {cycle}: stage {stage} {status}"), "magenta"))
            eta = self.estimate()
            if eta is not None:
                mean = sum(self.durations) / len(self.durations)
                rows.append(Text(
                    f"  about {duration(eta)} left (an estimate: {mean:.1f}s per build over "
                    f"{len(self.durations)} builds, {_n(known - done, 'package')} to go, "
                    f"{_n(self.workers, 'worker')})", "dim"))
        return Group(*rows)


def make_reporter(verbosity: int, terminal: bool, workers: int = 1) -> PlainReporter:
    """The reporter for stderr: live on a terminal (unless ``-q``), plain lines otherwise."""
    if terminal and verbosity > QUIET:
        return LiveReporter(verbosity, workers=workers)
    return PlainReporter(verbosity)
