"""What reading one archive may cost: a value every layer passes down, unchanged."""

from __future__ import annotations

from dataclasses import dataclass

MAX_UNPACKED_SIZE = 4 << 30  # bytes, all members together
MAX_MEMBERS = 200_000
MAX_RATIO = 200.0  # unpacked size / archive size
RATIO_FLOOR = 64 << 20  # below this many unpacked bytes the ratio is not checked


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What one archive may cost; raise them for archives known to be big."""

    max_unpacked_size: int = MAX_UNPACKED_SIZE
    max_members: int = MAX_MEMBERS
    max_ratio: float = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR


DEFAULT_LIMITS = ArchiveLimits()
