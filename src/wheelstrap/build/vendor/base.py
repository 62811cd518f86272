"""What a vendor is (:class:`Vendor`) and what it gives a build (:class:`Provision`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from wheelstrap.model.build import Vendored
from wheelstrap.model.limits import ArchiveLimits


@dataclass(frozen=True, slots=True)
class Provision:
    """What a vendor gives a build's hook processes."""

    env: dict[str, str] = field(default_factory=dict)
    #: host folders the sandboxed hooks may read (bound read-only where hidden)
    shown: tuple[str, ...] = ()
    #: folders put first on PATH
    path: tuple[str, ...] = ()


class Vendor(Protocol):
    kind: str

    def provide(self, wanted: Vendored, root: Path, work: Path, log: Path,
                limits: ArchiveLimits) -> Provision:
        """Fetch (or find in its store) and lay out what ``wanted`` names, under
        ``work`` (the build's folder); raise a WheelstrapError when it cannot."""
        ...
