"""Typed forms of the documents a run writes into OUT, and tolerant readers for them.

The documents (their writers live in graph.py, output.py, stages.py and the bootstrap):

- ``graph.json``        schema ``wheelstrap-graph`` v1 (format: graph.py docstring)
- ``build-order.json``  schema ``wheelstrap-build-order`` v1 (output.BuildRecord)
- ``cycles.json``       schema ``wheelstrap-cycles`` v1 (format: stages.py docstring)
- ``failures.json``     schema ``wheelstrap-failures`` v1::

      {"schema": "wheelstrap-failures", "version": 1,
       "failures": [{"name", "version", "error", "hint": str | null, "log": path | null,
                     "tail": str, "chain": [str], "blocked": ["name version", ...]}],
       "blocked": [{"name", "version", "because": "name version"}]}

- ``events.jsonl``      one JSON object per line, ``{"t": seconds since the run started,
  "event": kind, ...}``; kinds ``run-started``, ``discovered``, ``page``, ``downloaded``,
  ``sdist-made``, ``started``, ``finished``, ``failed``, ``reused``, ``stage``,
  ``published``,
  ``run-finished`` (fields: see the ``*Event`` TypedDicts below); ``page`` and
  ``downloaded`` events with ``"ahead": true`` are speculative work, not graph nodes.
  Readers ignore unknown kinds and fields, and a truncated last line (a killed run).

The readers check what a consumer relies on (types of the fields it reads) and report
every problem of a document at once as one :class:`UserInputError` naming the file; they
accept fields they do not know, so a newer writer does not break an older reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

from wheelstrap.errors import Problems, UserInputError

GRAPH_SCHEMA = "wheelstrap-graph"
GRAPH_VERSION = 1
BUILD_ORDER_SCHEMA = "wheelstrap-build-order"
BUILD_ORDER_VERSION = 1
CYCLES_SCHEMA = "wheelstrap-cycles"
CYCLES_VERSION = 1
FAILURES_SCHEMA = "wheelstrap-failures"
FAILURES_VERSION = 1

EdgeKindName = Literal["toplevel", "install", "build-system", "build-backend"]


# -- graph.json ---------------------------------------------------------------------------

class NodeRefDoc(TypedDict):
    name: str
    version: str


class SdistDoc(TypedDict, total=False):
    url: str
    filename: str
    sha256: str | None


class GraphNodeDoc(TypedDict):
    name: str
    version: str
    sdist: NotRequired[SdistDoc]


GraphEdgeDoc = TypedDict("GraphEdgeDoc", {
    "from": NodeRefDoc | None,
    "to": NodeRefDoc,
    "kind": str,
    "requirement": str,
})


class GraphDoc(TypedDict):
    schema: str
    version: int
    nodes: list[GraphNodeDoc]
    edges: list[GraphEdgeDoc]


# -- build-order.json ---------------------------------------------------------------------

class EnvWheelDoc(TypedDict):
    filename: str
    sha256: str
    seed: bool
    stage0: NotRequired[bool]
    prebuilt: NotRequired[bool]


class BuildDoc(TypedDict):
    name: str
    version: str
    wheel: str
    sha256: str
    sdist: NotRequired[str]
    sdist_sha256: NotRequired[str]
    sdist_url: NotRequired[str]
    reused: bool
    build_env: list[EnvWheelDoc]
    dynamic_requires: NotRequired[list[str]]
    source_date_epoch: NotRequired[int]
    cycle: NotRequired[str | None]
    stage: NotRequired[int | None]
    settings: NotRequired[dict[str, Any] | None]
    prebuilt: NotRequired[bool]


#: algorithm -> digests (hex), as a requirement file's ``--hash`` options give them
DigestsDoc = dict[str, list[str]]


class GitPinDoc(TypedDict):
    name: str
    version: str
    url: str
    commit: str
    ref: str | None


class GitRefDoc(TypedDict):
    """A ``name @ git+URL@REF`` requirement whose REF (a branch or tag, or ``HEAD`` when
    none was written) named ``commit`` at the run: the recorded requirement pins that
    commit, and this keeps what was written."""

    name: str
    ref: str
    commit: str


class InvocationDoc(TypedDict):
    """What a run was asked to do, enough to run it again (``build-order.json``
    ``invocation``; the format is in docs/output.md)."""

    requirements: list[str]
    constraints: list[str]
    hashes: dict[str, DigestsDoc]  # name -> digests (hash-checking mode when not empty)
    locked_hashes: dict[str, DigestsDoc]  # "name version" -> digests (a lock file's)
    git: list[GitPinDoc]  # versions a lock file makes from git commits
    git_refs: NotRequired[list[GitRefDoc]]  # absent in the output of an older wheelstrap
    index_url: str
    run: dict[str, Any]  # max_stages, strict, source_bootstrap, cross_check
    build: dict[str, Any]  # sandbox, isolate_network, timeout, embed_sbom
    release_age: dict[str, Any]  # min_days, max_days, as_of
    multiple_versions: bool
    builtin_settings: NotRequired[bool]  # absent in older records: on
    seed_stores: list[str]
    settings: dict[str, str] | None  # path, digest
    signing_key: str | None
    caches: list[str]
    trusted_keys: list[str]
    python: str


class BuildOrderDoc(TypedDict):
    schema: str
    version: int
    target: dict[str, Any]
    resolution: NotRequired[dict[str, Any]]
    invocation: NotRequired[InvocationDoc]  # absent in the output of an older wheelstrap
    builds: list[BuildDoc]


# -- cycles.json --------------------------------------------------------------------------

class CycleDoc(TypedDict):
    id: str
    members: list[NodeRefDoc]
    edges: list[GraphEdgeDoc]
    explanation: NotRequired[str]
    broken_by: NotRequired[dict[str, Any] | None]
    stages: NotRequired[int]
    fixed_point: NotRequired[bool]
    stage_wheels: NotRequired[list[dict[str, Any]]]
    seed_checks: NotRequired[list[dict[str, Any]]]
    cross_check: NotRequired[dict[str, Any] | None]
    shipped: NotRequired[str | None]
    status: NotRequired[str]
    warnings: NotRequired[list[str]]


class CyclesDoc(TypedDict):
    schema: str
    version: int
    cycles: list[CycleDoc]


# -- failures.json ------------------------------------------------------------------------

class FailureDoc(TypedDict):
    name: str
    version: str
    error: str
    hint: str | None
    log: str | None
    tail: str
    chain: list[str]
    blocked: list[str]


class BlockedDoc(TypedDict):
    name: str
    version: str
    because: str


class FailuresDoc(TypedDict):
    schema: str
    version: int
    failures: list[FailureDoc]
    blocked: list[BlockedDoc]


# -- events.jsonl -------------------------------------------------------------------------

class Event(TypedDict, total=False):
    """Any event: ``t`` and ``event`` are always there (the reader checks them); the
    other fields depend on the kind and are all optional to a reader."""

    t: float
    event: str
    # run-started
    targets: list[str]
    jobs: int
    strict: bool
    wall: str
    # discovered, downloaded, started, finished, failed, reused, published
    node: str
    # page
    name: str
    # downloaded, sdist-made, finished, failed, run-finished
    duration: float
    bytes: int
    # downloaded: the commit, when a git commit's tree was fetched
    git: str
    # sdist-made: the sdist made from that tree (and its sha256, as published's)
    sdist: str
    # page, downloaded: true for work the run did ahead, before it knew it needed it
    # (a page or an sdist it may never use; see bootstrap's LIKELY_BACKENDS)
    ahead: bool
    # started, finished, failed
    phase: str
    stage: int | None
    cycle: str | None
    worker: str
    timings: dict[str, float]
    error: str
    # stage
    status: str
    # published
    wheel: str
    sha256: str
    # run-finished
    ok: bool
    built: int
    reused: int
    failed: int


# -- checking -----------------------------------------------------------------------------

_Kind = Literal["str", "int", "num", "bool", "list", "dict", "node", "str?", "int?", "dict?",
                "node?", "bool?", "num?"]
#: Problems a document's error lists (it counts the rest).
MAX_PROBLEMS = 8
#: The largest document read (graph.json of a 10,000-node plan is a few MB).
MAX_DOCUMENT_BYTES = 1 << 30


class _Checker:
    """Checks the form of one document, collecting every problem with where it is."""

    def __init__(self) -> None:
        self.problems = Problems(limit=MAX_PROBLEMS)

    def fail(self, where: str, what: str) -> None:
        self.problems.add(where, what)

    def fields(self, value: Any, where: str, spec: Mapping[str, _Kind],
               optional: Mapping[str, _Kind] | None = None) -> bool:
        """Check ``value`` is an object whose fields have the given kinds."""
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, found {_describe(value)}")
            return False
        ok = True
        for key, kind in spec.items():
            if key not in value:
                self.fail(where, f"missing field {key!r}")
                ok = False
            elif not self.kind(value[key], kind, f"{where}.{key}"):
                ok = False
        for key, kind in (optional or {}).items():
            if key in value and not self.kind(value[key], kind, f"{where}.{key}"):
                ok = False
        return ok

    def kind(self, value: Any, kind: _Kind, where: str) -> bool:
        if kind.endswith("?"):
            if value is None:
                return True
            kind = cast(_Kind, kind[:-1])
        good = {
            "str": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: isinstance(v, list),
            "dict": lambda v: isinstance(v, dict),
            "node": lambda v: isinstance(v, dict) and isinstance(v.get("name"), str)
            and isinstance(v.get("version"), str),
        }[kind](value)
        if not good:
            want = {"num": "a number", "int": "an integer", "str": "a string",
                    "bool": "true or false", "list": "a list", "dict": "an object",
                    "node": 'an object {"name", "version"}'}[kind]
            self.fail(where, f"expected {want}, found {_describe(value)}")
        return bool(good)

    def items(self, value: Any, where: str, each: Callable[[Any, str], object]) -> None:
        if not isinstance(value, list):
            return  # already reported by fields()
        for i, item in enumerate(value):
            if self.problems.full:
                return
            each(item, f"{where}[{i}]")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value) if isinstance(value, str | int | float | bool) else None
    name = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
    return f"{name} {text}" if text is not None and len(text) <= 40 else name


def refuse_document(path: Path, what: str, problems: Problems) -> None:
    """Raise the one UserInputError of a document that is not a valid ``what``, if
    ``problems`` holds any."""
    problems.check(
        UserInputError, f"{path} is not a valid {what} document", inline=True,
        hint="Pass the output directory of a wheelstrap bootstrap run; a run of the same "
        "wheelstrap version rewrites this file.")


def _load_json(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise UserInputError(f"{path} is bigger than {MAX_DOCUMENT_BYTES} bytes, so it "
                                 f"is not a {what} a run wrote.",
                                 hint="Pass the output directory of a wheelstrap bootstrap run.")
        text = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise UserInputError(
            f"{path} does not exist, so there is no {what} to read.",
            hint="Pass the output directory of a wheelstrap bootstrap run "
            "(a run that stopped before resolving anything writes no graph).") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path} cannot be read: {exc}.",
                             hint="Check the file's permissions and contents.") from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise UserInputError(f"{path} is not valid JSON: it is nested too deeply.",
                             hint="The file is damaged; re-run the bootstrap into this "
                             "output directory to rewrite it.") from exc
    except ValueError as exc:
        raise UserInputError(f"{path} is not valid JSON: {exc}.",
                             hint="The file is damaged; re-run the bootstrap into this "
                             "output directory to rewrite it.") from exc


def _header(c: _Checker, doc: Any, schema: str, version: int) -> bool:
    if not isinstance(doc, dict):
        c.fail("document", f"expected an object, found {_describe(doc)}")
        return False
    if doc.get("schema") != schema or doc.get("version") != version \
            or isinstance(doc.get("version"), bool):
        c.fail("document", f"expected schema {schema!r} version {version}, found schema "
               f"{doc.get('schema')!r} version {doc.get('version')!r}")
        return False
    return True


def _check_edge(c: _Checker, e: Any, where: str) -> None:
    c.fields(e, where, {"from": "node?", "to": "node", "kind": "str", "requirement": "str"})


def _check_node(c: _Checker, n: Any, where: str) -> None:
    if c.fields(n, where, {"name": "str", "version": "str"}, {"sdist": "dict?"}) \
            and n.get("sdist") is not None:
        c.fields(n["sdist"], f"{where}.sdist", {},
                 {"url": "str", "filename": "str", "sha256": "str?"})


def check_graph(doc: Any, path: Path) -> GraphDoc:
    c = _Checker()
    if _header(c, doc, GRAPH_SCHEMA, GRAPH_VERSION) and c.fields(
            doc, "document", {"nodes": "list", "edges": "list"}):
        c.items(doc["nodes"], "nodes", lambda n, w: _check_node(c, n, w))
        c.items(doc["edges"], "edges", lambda e, w: _check_edge(c, e, w))
    refuse_document(path, f"{GRAPH_SCHEMA} v{GRAPH_VERSION}", c.problems)
    return cast(GraphDoc, doc)


def _check_env_wheel(c: _Checker, w: Any, where: str) -> None:
    c.fields(w, where, {"filename": "str", "sha256": "str", "seed": "bool"},
             {"stage0": "bool", "prebuilt": "bool"})


def check_build_order(doc: Any, path: Path) -> BuildOrderDoc:
    c = _Checker()

    def build(b: Any, where: str) -> None:
        if c.fields(b, where, {"name": "str", "version": "str", "wheel": "str",
                               "sha256": "str", "reused": "bool", "build_env": "list"},
                    {"cycle": "str?", "stage": "int?", "dynamic_requires": "list",
                     "source_date_epoch": "int", "sdist": "str", "sdist_sha256": "str",
                     "sdist_url": "str", "settings": "dict?", "prebuilt": "bool"}):
            c.items(b["build_env"], f"{where}.build_env", lambda w, ww: _check_env_wheel(
                c, w, ww))

    if _header(c, doc, BUILD_ORDER_SCHEMA, BUILD_ORDER_VERSION) and c.fields(
            doc, "document", {"builds": "list"},
            {"target": "dict", "resolution": "dict", "invocation": "dict"}):
        c.items(doc["builds"], "builds", build)
        if "invocation" in doc:
            _check_invocation(c, doc["invocation"], "invocation")
    refuse_document(path, f"{BUILD_ORDER_SCHEMA} v{BUILD_ORDER_VERSION}", c.problems)
    doc.setdefault("target", {})
    return cast(BuildOrderDoc, doc)


def _check_invocation(c: _Checker, inv: Any, where: str) -> None:
    if not c.fields(inv, where, {
            "requirements": "list", "constraints": "list", "hashes": "dict",
            "locked_hashes": "dict", "git": "list", "index_url": "str", "run": "dict",
            "build": "dict", "release_age": "dict", "multiple_versions": "bool",
            "seed_stores": "list", "settings": "dict?", "signing_key": "str?",
            "caches": "list", "trusted_keys": "list", "python": "str"},
            {"git_refs": "list"}):
        return
    inv.setdefault("git_refs", [])
    c.items(inv["git_refs"], f"{where}.git_refs", lambda g, w: c.fields(
        g, w, {"name": "str", "ref": "str", "commit": "str"}))
    for key in ("requirements", "constraints", "seed_stores", "caches", "trusted_keys"):
        c.items(inv[key], f"{where}.{key}", lambda v, w: c.kind(v, "str", w))
    if "builtin_settings" in inv:
        c.kind(inv["builtin_settings"], "bool", f"{where}.builtin_settings")
    for key in ("hashes", "locked_hashes"):
        for name, digests in inv[key].items():
            at = f"{where}.{key}[{json.dumps(name)}]"
            if c.kind(digests, "dict", at):
                for alg, values in digests.items():
                    if c.kind(values, "list", f"{at}.{alg}"):
                        c.items(values, f"{at}.{alg}", lambda v, w: c.kind(v, "str", w))
    c.items(inv["git"], f"{where}.git", lambda g, w: c.fields(
        g, w, {"name": "str", "version": "str", "url": "str", "commit": "str", "ref": "str?"}))
    c.fields(inv["run"], f"{where}.run", {"max_stages": "int", "strict": "bool",
                                          "source_bootstrap": "bool", "cross_check": "bool"})
    c.fields(inv["build"], f"{where}.build", {"sandbox": "str", "isolate_network": "bool",
                                              "timeout": "num?", "embed_sbom": "bool"})
    c.fields(inv["release_age"], f"{where}.release_age",
             {"min_days": "num?", "max_days": "num?", "as_of": "str?"})
    if inv["settings"] is not None:
        c.fields(inv["settings"], f"{where}.settings", {"path": "str", "digest": "str"})


def check_cycles(doc: Any, path: Path) -> CyclesDoc:
    c = _Checker()

    def cycle(x: Any, where: str) -> None:
        if c.fields(x, where, {"id": "str", "members": "list"},
                    {"edges": "list", "explanation": "str", "broken_by": "dict?",
                     "stages": "int", "fixed_point": "bool", "stage_wheels": "list",
                     "seed_checks": "list", "cross_check": "dict?", "status": "str",
                     "shipped": "str?", "warnings": "list"}):
            c.items(x["members"], f"{where}.members", lambda m, w: c.kind(m, "node", w))
            c.items(x.get("edges", []), f"{where}.edges", lambda e, w: _check_edge(c, e, w))

    if _header(c, doc, CYCLES_SCHEMA, CYCLES_VERSION) and c.fields(
            doc, "document", {"cycles": "list"}):
        c.items(doc["cycles"], "cycles", cycle)
    refuse_document(path, f"{CYCLES_SCHEMA} v{CYCLES_VERSION}", c.problems)
    for x in doc["cycles"]:
        x.setdefault("edges", [])
    return cast(CyclesDoc, doc)


def check_cycle_wheels(doc: CyclesDoc, path: Path) -> None:
    """Check the wheels a cycles.json entry names (what ``affected`` follows): its seeds
    and stage-0 wheels, and every stage's wheels with their build environments (the
    same for the seedless run of a cross-check).  Apart from :func:`check_cycles`: the
    report reads these fields tolerantly, and a damaged one must not keep it from the
    rest."""
    c = _Checker()
    wheel: dict[str, _Kind] = {"name": "str", "version": "str", "wheel": "str",
                               "sha256": "str"}

    def stage(x: Any, where: str) -> None:
        if not c.fields(x, where, {"stage": "int", "wheels": "dict"}):
            return
        for key, w in x["wheels"].items():
            here = f"{where}.wheels[{json.dumps(key)}]"
            if len(key.split(" ")) != 2:
                c.fail(here, 'expected a key "name version"')
            if c.fields(w, here, {"wheel": "str", "sha256": "str"}, {"build_env": "list"}):
                c.items(w.get("build_env", []), f"{here}.build_env",
                        lambda e, ww: _check_env_wheel(c, e, ww))

    def run(x: Any, where: str) -> None:
        broken = x.get("broken_by")
        if isinstance(broken, dict):
            for part in ("seeds", "stage0"):
                if c.fields(broken, f"{where}.broken_by", {}, {part: "list"}):
                    c.items(broken.get(part, []), f"{where}.broken_by.{part}",
                            lambda s, w: c.fields(s, w, wheel))
        c.items(x.get("stage_wheels", []), f"{where}.stage_wheels", stage)

    for i, x in enumerate(doc["cycles"]):
        run(x, f"cycles[{i}]")
        cross = x.get("cross_check")
        if isinstance(cross, dict) and "source_run" in cross:
            where = f"cycles[{i}].cross_check.source_run"
            if c.fields(cross, f"cycles[{i}].cross_check", {}, {"source_run": "dict"}) \
                    and c.fields(cross["source_run"], where, {},
                                 {"broken_by": "dict?", "stage_wheels": "list"}):
                run(cross["source_run"], where)
    refuse_document(path, f"{CYCLES_SCHEMA} v{CYCLES_VERSION}", c.problems)


def check_failures(doc: Any, path: Path) -> FailuresDoc:
    c = _Checker()
    if _header(c, doc, FAILURES_SCHEMA, FAILURES_VERSION) and c.fields(
            doc, "document", {"failures": "list"}, {"blocked": "list"}):
        c.items(doc["failures"], "failures", lambda f, w: c.fields(
            f, w, {"name": "str", "version": "str", "error": "str"},
            {"hint": "str?", "log": "str?", "tail": "str?", "chain": "list",
             "blocked": "list"}))
        c.items(doc.get("blocked", []), "blocked", lambda b, w: c.fields(
            b, w, {"name": "str", "version": "str"}, {"because": "str?"}))
    refuse_document(path, f"{FAILURES_SCHEMA} v{FAILURES_VERSION}", c.problems)
    doc.setdefault("blocked", [])
    for f in doc["failures"]:
        f.setdefault("hint", None)
        f.setdefault("log", None)
        f["tail"] = f.get("tail") or ""
        f.setdefault("chain", [])
        f.setdefault("blocked", [])
    for b in doc["blocked"]:
        b["because"] = b.get("because") or ""
    return cast(FailuresDoc, doc)


def parse_events(text: str, path: Path) -> list[Event]:
    """Events of an ``events.jsonl`` text, in order.  Unknown kinds are kept (a reader
    skips what it does not know); a truncated last line is dropped; any other line that
    is not a JSON object with a numeric ``t`` and a string ``event`` is an error."""
    lines = text.split("\n")
    events: list[Event] = []
    problems = Problems(limit=MAX_PROBLEMS)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        last = i == len(lines)  # no newline after it: the writer was cut off
        try:
            value = json.loads(line)
        except ValueError as exc:
            if not last:
                problems.add(f"line {i}", f"not JSON ({exc})")
            continue
        t = value.get("t") if isinstance(value, dict) else None
        if (not isinstance(value, dict) or not isinstance(value.get("event"), str)
                or not isinstance(t, int | float) or isinstance(t, bool)):
            problems.add(f"line {i}", 'expected an object with a number "t" and a string '
                         '"event"')
            continue
        events.append(cast(Event, value))
    refuse_document(path, "wheelstrap event log", problems)
    return events


def read_events(path: Path) -> list[Event]:
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise UserInputError(f"{path} does not exist.",
                             hint="Only runs of a wheelstrap that writes an event log "
                             "have one.") from exc
    except OSError as exc:
        raise UserInputError(f"{path} cannot be read: {exc}.",
                             hint="Check the file's permissions.") from exc
    return parse_events(text, path)


def read_graph(path: Path) -> GraphDoc:
    return check_graph(_load_json(path, "dependency graph"), path)


def read_build_order(path: Path) -> BuildOrderDoc:
    return check_build_order(_load_json(path, "build order"), path)


def read_cycles(path: Path, *, wheels: bool = False) -> CyclesDoc:
    """``wheels``: also check the wheels the entries name (:func:`check_cycle_wheels`)."""
    doc = check_cycles(_load_json(path, "cycle report"), path)
    if wheels:
        check_cycle_wheels(doc, path)
    return doc


def read_failures(path: Path) -> FailuresDoc:
    return check_failures(_load_json(path, "failure report"), path)


def node_key(ref: Mapping[str, Any]) -> str:
    """``"name version"`` of a node reference, the name normalized."""
    from packaging.utils import canonicalize_name

    return f"{canonicalize_name(str(ref['name']))} {ref['version']}"
