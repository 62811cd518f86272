"""Requirement strings, requirements files (``-r``) and constraints files (``-c``)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .errors import UserInputError


@dataclass(slots=True)
class RequirementSet:
    requirements: list[Requirement] = field(default_factory=list)
    constraints: list[Requirement] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    where: str


def _logical_lines(text: str, origin: str) -> Iterable[_Line]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            yield _Line(full, f"{origin}:{start}")
    if pending.strip():
        yield _Line(pending.strip(), f"{origin}:{start}")


def parse_requirement(text: str, where: str = "the command line") -> Requirement:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UserInputError(
            f"{where}: {text!r} is not a valid PEP 508 requirement ({exc}).",
            hint="Write requirements like 'name', 'name>=1.2', 'name[extra]; "
            "python_version >= \"3.11\"'.",
        ) from exc
    if req.url:
        raise UserInputError(
            f"{where}: {text!r} is a direct URL requirement; wheelstrap resolves names "
            "against the index only.",
            hint="Publish the sdist on an index you pass with --index-url, then name it.",
        )
    return req


def read_files(
    requirement_files: Iterable[Path], constraint_files: Iterable[Path]
) -> RequirementSet:
    """Read ``-r`` and ``-c`` files (they may nest ``-r``/``-c``); report all errors at once."""
    result = RequirementSet()
    problems: list[str] = []
    seen: set[tuple[Path, bool]] = set()

    def visit(path: Path, as_constraint: bool) -> None:
        resolved = path.resolve()
        if (resolved, as_constraint) in seen:
            return
        seen.add((resolved, as_constraint))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"cannot read {path}: {exc.strerror or exc}")
            return
        for line in _logical_lines(text, str(path)):
            if line.text.startswith("-"):
                parts = shlex.split(line.text)
                opt = parts[0]
                arg = parts[1] if len(parts) > 1 else None
                if "=" in opt:
                    opt, arg = opt.split("=", 1)
                if opt in ("-r", "--requirement", "-c", "--constraint") and arg:
                    visit(path.parent / arg, as_constraint or opt in ("-c", "--constraint"))
                elif opt in ("--hash",):
                    continue
                else:
                    problems.append(
                        f"{line.where}: option {opt!r} is not supported in requirement files"
                    )
                continue
            text_req = line.text.split(" --hash", 1)[0].strip()
            try:
                req = parse_requirement(text_req, line.where)
            except UserInputError as exc:
                problems.append(exc.message)
                continue
            (result.constraints if as_constraint else result.requirements).append(req)

    for p in requirement_files:
        visit(Path(p), False)
    for p in constraint_files:
        visit(Path(p), True)
    if problems:
        raise UserInputError(
            "The requirement files have problems:\n  " + "\n  ".join(problems),
            hint="Fix the lines named above; only PEP 508 requirements, -r and -c are accepted.",
        )
    return result
