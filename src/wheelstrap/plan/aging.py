"""The release-age rules in a run (``--min-release-age``, ``--max-release-age``, a
project's ``min-release-age`` setting; judged by :func:`wheelstrap.index.age.apply_rule`):
which projects they judge, what they held back of each index page, the files they could
not judge, the releases held back that the run would otherwise have taken (the run
record's ``held_back``), and what a resolution error says of them.

Pure: it remembers what it judged and returns pages, warnings, errors and records as
values; the planner emits and raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import Version

from wheelstrap.config.settings import Settings
from wheelstrap.errors import ResolutionError
from wheelstrap.index.age import AgeRule, Held, apply_rule, untimed_reason
from wheelstrap.index.resolve import Absence, Candidate, choose_all
from wheelstrap.index.simple import ProjectPage
from wheelstrap.model.progress import Warn


class Aging:
    """The release-age rules of one run, and what they did to its index pages."""

    def __init__(self, rule: AgeRule | None, settings: Settings, strict: bool) -> None:
        self.rule = rule
        self.settings = settings
        self.strict = strict
        #: what the rules held back of each page, and the files of it they could not
        #: judge (no upload time)
        self.held: dict[NormalizedName, tuple[Held, ...]] = {}
        self.untimed: dict[NormalizedName, frozenset[str]] = {}
        self._untimed_warned: set[NormalizedName] = set()
        #: the projects whose settings give a minimum release age of their own
        self._names = frozenset(t.name for t in settings.tables
                                if t.values.min_release_age is not None)

    def judges(self, name: NormalizedName) -> bool:
        """Whether a release-age rule may judge ``name``'s releases."""
        rule = self.rule
        return rule is not None and (rule.active or name in self._names)

    def page(self, name: NormalizedName, page: ProjectPage) -> ProjectPage:
        """``page`` with what the rules hold back taken out (and noted)."""
        rule = self.rule
        if rule is None or not self.judges(name):
            return page
        settings = self.settings

        def min_days(version: Version) -> float | None:
            return settings.for_package(name, str(version)).min_release_age

        verdict = apply_rule(page, rule, min_days if name in self._names else None)
        self.held[name], self.untimed[name] = verdict.held, verdict.untimed
        return verdict.page

    def untimed_file(self, c: Candidate, chain: tuple[str, ...]
                     ) -> ResolutionError | Warn | None:
        """``c`` is used: when the rules could not judge its file, the error under
        --strict, else a warning (once per project)."""
        if c.file.filename not in self.untimed.get(c.name, ()):
            return None
        why = untimed_reason(c.file)
        if self.strict:
            return ResolutionError(
                f"The release-age rules cannot judge {c.file.filename} of {c.name} "
                f"{c.version}: {why}; --strict refuses it.",
                hint=f"Use an index that serves PEP 691 JSON pages with PEP 700 upload "
                f"times, exempt {c.name} in the settings ([packages.{c.name}] "
                "min-release-age = 0, with no --max-release-age), or run without --strict.",
                chain=chain)
        if c.name in self._untimed_warned:
            return None
        self._untimed_warned.add(c.name)
        return Warn(f"{c.name}: the release-age rules cannot judge {c.file.filename} ({why}); "
                    f"{c.name} {c.version} is used unchecked")

    def held_back(self, wanted: Iterable[tuple[NormalizedName, SpecifierSet,
                                               Candidate | Absence]],
                  unaged: Callable[[NormalizedName], list[Candidate] | None],
                  constraints: Mapping[NormalizedName, list[SpecifierSet]]
                  ) -> list[dict[str, Any]]:
        """The releases the rules held back that the run would otherwise have taken, for
        the run record, by name and version: each one that a requirement of ``wanted``
        (its name, specifier, and what the run chose for it; ``Absence.NO_MATCH`` for
        every version allowed), with the constraints, the target's Python, yanking and
        pre-release rules, would have preferred to what was chosen.  ``unaged``: a name's
        candidates before the rules (None: no page).  The others (an abandoned release
        older than the one chosen) changed nothing and are not listed."""
        found: dict[tuple[NormalizedName, Version], Held] = {}
        specs: dict[NormalizedName, list[tuple[SpecifierSet, Candidate | Absence]]] = {}
        for name, spec, choice in wanted:
            if self.held.get(name):
                specs.setdefault(name, []).append((spec, choice))
        for name, spec_choices in specs.items():
            candidates = unaged(name)
            if candidates is None:
                continue
            held = {h.version: h for h in self.held[name]}
            for spec, choice in spec_choices:
                for c in choose_all(candidates, spec, constraints.get(name, [])):
                    if c.version in held and (not isinstance(choice, Candidate)
                                              or c.version > choice.version):
                        found[(name, c.version)] = held[c.version]
        return [found[k].to_json(k[0]) for k in sorted(found)]

    def explain(self, name: NormalizedName, wanted: SpecifierSet) -> tuple[str, str] | None:
        """What a resolution error of ``name`` under ``wanted`` adds to its message, and
        its hint, when the rules held back releases of ``name``."""
        held = self.held.get(name, ())
        if not held:
            return None
        fits = [h for h in held if wanted.contains(h.version, prereleases=True)]
        named = fits or list(held)
        msg = (f"The release-age rules held back {len(named)} release"
               f"{'s' if len(named) > 1 else ''} of {name}"
               f"{' that would satisfy it' if fits else ''}: "
               + "; ".join(str(h) for h in named[:12])
               + (f"; and {len(named) - 12} more" if len(named) > 12 else "") + ".")
        hint = ("Wait until a release is old enough, lower --min-release-age or raise "
                f"--max-release-age, or exempt {name} in the settings "
                f"([packages.{name}] min-release-age = 0).")
        return msg, hint
