"""The exception hierarchy: one root, subclassed by whose fault the problem is.

Every error carries a one-paragraph message, an optional hint saying what to do, and
the chain of requirements that led to it.  Only the CLI renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar


class WheelstrapError(Exception):
    """Root of every error wheelstrap reports to its user."""

    def __init__(
        self, message: str, *, hint: str | None = None, chain: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.chain: tuple[str, ...] = tuple(chain)

    def with_chain(self, chain: Sequence[str]) -> WheelstrapError:
        """Attach the requirement chain if none is recorded yet; return self."""
        if not self.chain:
            self.chain = tuple(chain)
        return self


class UserInputError(WheelstrapError):
    """The command line, a requirements file, a constraint or a seed store is wrong."""


class ResolutionError(WheelstrapError):
    """No acceptable source distribution satisfies a requirement."""


class IndexAccessError(WheelstrapError):
    """The package index could not be reached or answered nonsense."""


class SourceError(WheelstrapError):
    """A downloaded source archive is corrupt, hostile or does not match its hash."""


class BuildFailure(WheelstrapError):
    """A build backend failed; ``log`` names its full output."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        chain: Sequence[str] = (),
        log: str | None = None,
        tail: str = "",
    ) -> None:
        super().__init__(message, hint=hint, chain=chain)
        self.log = log
        self.tail = tail


class ClusterError(WheelstrapError):
    """A Dask cluster cannot be reached, has no worker that can build for the target, or
    its workers cannot fetch their inputs from the coordinator."""


class CycleError(WheelstrapError):
    """The build graph contains build cycles that this run cannot break."""


class LockedError(WheelstrapError):
    """Another wheelstrap run holds the output directory."""


class InternalError(WheelstrapError):
    """A bug in wheelstrap itself."""


class MissingSystemRequirements(UserInputError):
    """Builds need commands or libraries this machine lacks; ``missing`` lists them
    (kind, name, debian, fedora) for the documents."""

    def __init__(self, message: str, *, missing: Sequence[dict[str, Any]] = (),
                 hint: str | None = None, chain: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint, chain=chain)
        self.missing = list(missing)


class SandboxUnavailable(UserInputError):
    """Build backends must run in a sandbox that this machine cannot provide."""


class InvalidWheel(BuildFailure):
    """A build backend wrote a wheel that must not be published; ``problems`` lists why."""

    def __init__(self, message: str, *, problems: Sequence[str] = (),
                 hint: str | None = None, chain: Sequence[str] = (), log: str | None = None,
                 tail: str = "") -> None:
        super().__init__(message, hint=hint, chain=chain, log=log, tail=tail)
        self.problems: tuple[str, ...] = tuple(problems)


_E = TypeVar("_E", bound=WheelstrapError)
_BLOCK = "\n  "


class Problems:
    """Every problem one validation finds, reported together as one error.

    ``add`` records a problem (its parts joined with ": ", so ``add(where, what)`` names
    the place); the collector is true once it holds one.  :meth:`error` makes the one
    error of the right kind that lists them all, and :meth:`check` raises it if there
    is anything to say.  With ``limit``, the message shows that many and counts the
    rest (``full`` says when a checker may stop looking)."""

    def __init__(self, items: Iterable[str] = (), *, limit: int | None = None) -> None:
        self.items: list[str] = list(items)
        self.limit = limit

    def add(self, *parts: str) -> None:
        self.items.append(": ".join(parts))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.items) > self.limit

    def joined(self, sep: str) -> str:
        shown = self.items if self.limit is None else self.items[:self.limit]
        more = len(self.items) - len(shown)
        return sep.join(shown) + (
            f"{sep}and {more} more problem{'s' if more > 1 else ''}" if more > 0 else "")

    def error(self, kind: type[_E], heading: str, *, hint: str | None, inline: bool = False,
              end: str = ".", **fields: Any) -> _E:
        """``kind(message, hint=hint, **fields)``.  The message is ``heading`` and the
        problems one per indented line, or, ``inline``, ``heading: a; b`` + ``end``."""
        if inline:
            message = f"{heading}: {self.joined('; ')}{end}"
        else:
            message = f"{heading}:{_BLOCK}{self.joined(_BLOCK)}"
        return kind(message, hint=hint, **fields)

    def check(self, kind: type[WheelstrapError], heading: str, *, hint: str | None,
              inline: bool = False, end: str = ".", **fields: Any) -> None:
        """Raise :meth:`error` if there is any problem."""
        if self.items:
            raise self.error(kind, heading, hint=hint, inline=inline, end=end, **fields)
