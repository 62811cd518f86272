"""The exception hierarchy: one root, subclassed by whose fault the problem is.

Every error carries a one-paragraph message, an optional hint saying what to do, and
the chain of requirements that led to it.  Only the CLI renders them.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class SandboxUnavailable(UserInputError):
    """Build backends must run in a sandbox that this machine cannot provide."""


class InvalidWheel(BuildFailure):
    """A build backend wrote a wheel that must not be published; ``problems`` lists why."""

    def __init__(self, message: str, *, problems: Sequence[str] = (),
                 hint: str | None = None, chain: Sequence[str] = (), log: str | None = None,
                 tail: str = "") -> None:
        super().__init__(message, hint=hint, chain=chain, log=log, tail=tail)
        self.problems: tuple[str, ...] = tuple(problems)
