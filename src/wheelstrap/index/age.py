"""Release-age rules (``--min-release-age``, ``--max-release-age``): which files of an
index page a run may use, judged by the upload times that PEP 691 JSON pages carry (PEP
700 ``upload-time``).  Pure: no I/O, and the clock is a value (:attr:`AgeRule.now`,
fixed once per run), so that a test or a re-run can pass the time it wants.

- The minimum age ignores every sdist uploaded less than ``min_days`` before ``now``: a
  release that was published an hour ago is held back until it has aged.  A package's
  settings may set another minimum (``min-release-age = 0`` exempts it).
- The maximum age refuses a release whose files (sdists and wheels) were all uploaded
  more than ``max_days`` before ``now``: an abandoned release.

A file whose upload time is missing (an HTML page never gives one) or malformed cannot be
judged: it is kept, and :class:`AgeVerdict.untimed` names it, so that the planner warns,
or fails under ``--strict`` when it would use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.version import Version

from wheelstrap.index.simple import ProjectFile, ProjectPage, dist_version

#: PEP 700: ``yyyy-mm-ddThh:mm:ss.ffffffZ``, the fraction optional, in UTC.  An explicit
#: ``+00:00`` is taken too (it says the same); any other offset, or none, is malformed.
_UPLOAD_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")

_SDIST_SUFFIXES = (".tar.gz", ".zip")


def upload_time(f: ProjectFile) -> datetime | None:
    """When ``f`` was uploaded, in UTC; None when its page gives no time or a malformed
    one (see :func:`untimed_reason`)."""
    raw = f.upload_time
    if raw is None or not _UPLOAD_TIME.fullmatch(raw):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:  # a month 13, a day 32
        return None


def untimed_reason(f: ProjectFile) -> str:
    """Why ``f`` has no usable upload time, for messages."""
    if f.upload_time is None:
        return "the index gives no upload time for it (PEP 700 upload-time: an HTML page " \
            "never does)"
    return f"its upload-time {f.upload_time!r} is not a PEP 700 time (yyyy-mm-ddThh:mm:ssZ)"


def format_time(t: datetime) -> str:
    """A time as recorded and shown: ISO 8601 in UTC, to the second (four-digit year)."""
    u = t.astimezone(UTC)
    return f"{u.year:04d}-{u:%m-%dT%H:%M:%S}Z"


def parse_time(text: str) -> datetime:
    """A time given by the user (``--as-of``): ISO 8601, a date or a date and time; a
    time without an offset is UTC.  Raises ValueError (also for a time that has no UTC
    equivalent, such as year 1 at an offset east of Greenwich)."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    try:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise ValueError("it is out of the range of dates in UTC") from None


def _younger(now: datetime, t: datetime, days: float) -> bool:
    """Whether ``t`` is less than ``days`` before ``now`` (any number of days: a huge
    one does not overflow a timedelta)."""
    return (now - t).total_seconds() < days * 86400


def _older(now: datetime, t: datetime, days: float) -> bool:
    """Whether ``t`` is more than ``days`` before ``now``."""
    return (now - t).total_seconds() > days * 86400


def _days(d: float) -> str:
    return f"{d:g} day{'' if d == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class AgeRule:
    """The release-age rules of one run and the time they are judged at."""

    now: datetime
    min_days: float | None = None
    max_days: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.min_days) or self.max_days is not None

    def to_json(self) -> dict[str, Any]:
        """The rule and its reference time, for the run record (build-order.json)."""
        return {**self.rule_json(), "now": format_time(self.now)}

    def rule_json(self) -> dict[str, Any]:
        """The rule alone, for provenance statements (which must not change with the
        time a run happens at)."""
        return {"min_release_age_days": self.min_days, "max_release_age_days": self.max_days}


#: The limits a release may be held back by, as the run record names them.
MIN_AGE = "min-release-age"
MAX_AGE = "max-release-age"


@dataclass(frozen=True, slots=True)
class Held:
    """A release the rules held back, and why: by which limit (:data:`MIN_AGE` or
    :data:`MAX_AGE`) of how many days, and the upload that decided (the newest too young
    a file of it, or its last upload when it is abandoned)."""

    version: Version
    why: str
    limit: str
    days: float
    uploaded: datetime

    def __str__(self) -> str:
        return f"{self.version} ({self.why})"

    def to_json(self, name: str) -> dict[str, Any]:
        """The release as the run record (build-order.json) lists it."""
        return {"name": name, "version": str(self.version),
                "upload_time": format_time(self.uploaded), "limit": self.limit,
                "days": self.days}


@dataclass(frozen=True, slots=True)
class AgeVerdict:
    """What the rules make of one page: the page with the files they let through, the
    releases they held back (newest first), and the files they could not judge."""

    page: ProjectPage
    held: tuple[Held, ...]
    untimed: frozenset[str]  # file names


def apply_rule(page: ProjectPage, rule: AgeRule,
               min_days_for: Callable[[Version], float | None] | None = None) -> AgeVerdict:
    """Judge the sdists of ``page`` by ``rule``; ``min_days_for(version)`` is the minimum
    age the settings give that release (None: the rule's)."""
    sdists: dict[Version, list[ProjectFile]] = {}
    newest: dict[Version, datetime] = {}  # the last upload of each release
    timeless: set[Version] = set()  # releases with a file of unknown time
    for f in page.files:
        version = dist_version(f.filename)
        if version is None:
            continue
        if f.filename.endswith(_SDIST_SUFFIXES):
            sdists.setdefault(version, []).append(f)
        t = upload_time(f)
        if t is None:
            timeless.add(version)
        elif version not in newest or t > newest[version]:
            newest[version] = t
    dropped: set[str] = set()
    held: list[Held] = []
    untimed: set[str] = set()
    for version, files in sorted(sdists.items(), reverse=True):
        min_days = min_days_for(version) if min_days_for is not None else None
        if min_days is None:
            min_days = rule.min_days
        judged = bool(min_days) or rule.max_days is not None
        if not judged:
            continue
        for f in files:
            if upload_time(f) is None:
                untimed.add(f.filename)
        why = None
        if rule.max_days is not None and version not in timeless and version in newest \
                and _older(rule.now, newest[version], rule.max_days):
            why = (f"abandoned: its last upload was {format_time(newest[version])}, more "
                   f"than --max-release-age {_days(rule.max_days)} before "
                   f"{format_time(rule.now)}")
            limit, days, uploaded = MAX_AGE, rule.max_days, newest[version]
        young = []
        if why is None and min_days:
            for f in files:
                t = upload_time(f)
                if t is not None and _younger(rule.now, t, min_days):
                    young.append((f, t))
            if young and len(young) < len(files):  # an older file of it remains
                dropped.update(f.filename for f, _ in young)
                continue
            if young:
                last = max(t for _, t in young)
                why = (f"uploaded {format_time(last)}, less than the minimum release age "
                       f"of {_days(min_days)} before {format_time(rule.now)}")
                limit, days, uploaded = MIN_AGE, min_days, last
        if why is not None:
            dropped.update(f.filename for f in files)
            held.append(Held(version, why, limit, days, uploaded))
    kept = tuple(f for f in page.files if f.filename not in dropped)
    return AgeVerdict(ProjectPage(page.name, kept), tuple(held),
                      frozenset(untimed - dropped))
