"""Seed promotion: verified cycle outputs become the next iteration's seeds, and a
promoted store can be verified by rebuilding every seed from its recorded sdist.

A promoted seed's manifest entry carries a ``provenance`` table::

    provenance = { statement = "<wheel>.intoto.json",   # copied into the store
                   statement_sha256 = "...", sdist_url = "...", sdist_sha256 = "...",
                   index = "...", cycle = "cycle-1", method = "seeds" | "source",
                   stage = 2, fixed_point = true, source_output = "/abs/OUT",
                   pins = ["name==version", ...] }   # every package version of that run

``pins`` lets ``seeds verify`` resolve the same versions the promoted build saw.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from wheelstrap.errors import Problems, UserInputError
from wheelstrap.fsutil import atomic_copy, sha256_file
from wheelstrap.model.progress import NULL_REPORTER, Reporter
from wheelstrap.model.schema import read_build_order, read_cycles
from wheelstrap.model.target import Target
from wheelstrap.model.wheel import Seed
from wheelstrap.seeds.store import add_wheels, read_manifest


def _statement_facts(path: Path, problems: Problems) -> dict[str, Any] | None:
    """What promotion takes from a provenance statement (its sdist and index), or None
    and a problem."""
    try:
        doc = json.loads(path.read_text("utf-8"))
        ext = doc["predicate"]["buildDefinition"]["externalParameters"]
        facts = {"sdist_url": ext["sdist"]["url"], "sdist_sha256": ext["sdist"]["sha256"],
                 "index": ext["index"]}
    except (OSError, ValueError, RecursionError, LookupError, TypeError) as exc:
        problems.add(f"{path} cannot be read as a provenance statement of wheelstrap "
                     f"({type(exc).__name__}: {exc})")
        return None
    if not all(isinstance(v, str) for v in facts.values()):
        problems.add(f"{path} names its sdist or index with something else than strings")
        return None
    return facts


def export(output: Path, store: Path) -> list[Seed]:
    """Copy the final-stage wheels of every shipped cycle in ``output`` into ``store``."""
    cycles = read_cycles(output / "cycles.json")["cycles"]
    builds = read_build_order(output / "build-order.json")["builds"]
    shipped = [c for c in cycles if c.get("status") == "shipped"]
    if not shipped:
        raise UserInputError(
            f"{output} has no build cycle whose wheels were shipped; nothing to promote.",
            hint="Promote the output of a run that broke at least one cycle.")
    versions = Counter(b["name"] for b in builds)
    pins = sorted(f"{b['name']}=={b['version']}" for b in builds if versions[b["name"]] == 1)
    wheels: list[Path] = []
    provenance: dict[str, dict[str, Any]] = {}
    problems = Problems()
    for cycle in shipped:
        for member in cycle["members"]:
            rec = next((b for b in builds if b["name"] == member["name"]
                        and b["version"] == member["version"] and b.get("cycle")), None)
            if rec is None:
                problems.add(f"{member['name']} {member['version']} of {cycle['id']} is "
                             "not in build-order.json")
                continue
            wheel = output / "wheels" / rec["wheel"]
            statement = output / "provenance" / f"{rec['wheel']}.intoto.json"
            if not wheel.is_file() or sha256_file(wheel) != rec["sha256"]:
                problems.add(f"{wheel} is missing or does not match build-order.json")
                continue
            if not statement.is_file():
                problems.add(f"{statement} is missing")
                continue
            method = (cycle.get("broken_by") or {}).get("method")
            stage = rec.get("stage")
            if not isinstance(method, str) or stage is None:
                problems.add(f"{rec['wheel']} has no stage in build-order.json, or "
                             f"{cycle['id']} no method in cycles.json")
                continue
            facts = _statement_facts(statement, problems)
            if facts is None:
                continue
            wheels.append(wheel)
            provenance[wheel.name] = {
                "statement": statement.name, "statement_sha256": sha256_file(statement),
                **facts, "cycle": cycle["id"], "method": method, "stage": stage,
                "fixed_point": bool(cycle.get("fixed_point")),
                "source_output": str(output.resolve()), "pins": pins,
            }
    problems.check(UserInputError, "The output cannot be promoted",
                   hint="Re-run the bootstrap into that directory, then export again.")
    origin = f"promoted by wheelstrap seeds export from {output.resolve()}"
    added = add_wheels(store, wheels, origin, provenance, replace=True)
    for wheel in wheels:
        atomic_copy(output / "provenance" / f"{wheel.name}.intoto.json",
                    store / f"{wheel.name}.intoto.json")
    return added


@dataclass(frozen=True, slots=True)
class Verification:
    seed: Seed
    rebuilt_sha256: str | None
    reproduced: bool
    detail: str = ""


def verify(store: Path, index_url: str | None, output: Path | None,
           reporter: Reporter = NULL_REPORTER) -> list[Verification]:
    """Rebuild every promoted seed from its recorded sdist, with the store as seed set."""
    from wheelstrap.plan.options import Options
    from wheelstrap.run.coordinator import bootstrap

    promoted = [s for s in read_manifest(store) if s.provenance]
    if not promoted:
        raise UserInputError(f"{store} holds no promoted seed (none has provenance).",
                             hint="Create one with 'wheelstrap seeds export OUT STORE'.")
    indexes = {s.provenance["index"] for s in promoted if s.provenance}
    if index_url is None and len(indexes) > 1:
        raise UserInputError(f"The promoted seeds come from several indexes: {sorted(indexes)}.",
                             hint="Pass --index-url to choose one.")
    index = index_url or indexes.pop()
    pins: dict[str, str] = {}
    for s in promoted:
        assert s.provenance is not None
        for pin in s.provenance.get("pins", []):
            req = Requirement(pin)
            pins.setdefault(req.name, pin)
    tops = tuple(Requirement(f"{s.name}=={s.version}") for s in promoted)
    with tempfile.TemporaryDirectory(prefix="wheelstrap-verify-") as tmp:
        out = output or Path(tmp) / "out"
        options = Options(requirements=tops,
                          constraints=tuple(Requirement(p) for p in sorted(pins.values())),
                          output=out, index_url=index, target=Target.current(),
                          seed_stores=(store,))
        result = bootstrap(options, reporter)
        shipped = {(r.name, r.version): r for r in result.records}
        checks = {(c["name"], c["version"]): c for cyc in result.cycles
                  for c in cyc.get("seed_checks", [])}
        verdicts = []
        for s in promoted:
            rec = shipped.get((s.name, s.version))
            check = checks.get((s.name, s.version))
            if rec is None:
                verdicts.append(Verification(s, None, False, "the rebuild produced no wheel"))
                continue
            same = rec.sha256 == s.sha256
            detail = ""
            if not same and check and check.get("differences"):
                d = check["differences"]
                detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in d.items() if v)
            elif rec.cycle is None:
                detail = "rebuilt outside any build cycle"
            verdicts.append(Verification(s, rec.sha256, same, detail))
    return verdicts
