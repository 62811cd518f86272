"""Stage-0 wheels packed straight from an unpacked sdist, with no build backend at all.

This is how a pure-Python build cycle is entered without any binary seed: the members
that must be broken are packed by wheelstrap from their sources, and only serve to build
stage 1 (which is then rebuilt to a fixed point).  A stage-0 wheel is never shipped.

:func:`inspect` decides (reading files only) whether a source tree is pure Python and
what goes where; :func:`pack` writes the wheel.  Layouts understood, in order:
``[tool.setuptools]`` (packages, package-dir, py-modules, packages.find), ``setup.cfg``
``[options]``, ``[tool.flit.module]``, ``[tool.hatch.build.targets.wheel]`` (packages,
only-include, sources), ``[tool.poetry] packages``, ``[tool.pdm.build]``
(package-dir, includes), then the conventions: a ``src/`` layout, top-level packages
(``__init__.py`` or namespace parents of one), top-level modules, and a flat sdist whose
root is the package itself, placed at the import path its project name spells.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from wheelstrap.dist.archives import ZIP_EPOCH, ZIP_LATEST
from wheelstrap.errors import SourceError
from wheelstrap.fsutil import stays_inside, within
from wheelstrap.dist.sources import final_requires, read_pyproject

NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".pyx", ".pxd", ".rs", ".f", ".f90",
                   ".f95", ".f03", ".for", ".cu", ".m", ".mm", ".swift", ".go", ".zig")
NATIVE_BACKENDS = ("maturin", "setuptools_rust", "scikit_build_core", "mesonpy",
                   "enscons", "pymsbuild", "py_build_cmake", "sipbuild")
NON_CODE_DIRS = {"tests", "test", "testing", "docs", "doc", "examples", "example",
                 "benchmarks", "bench", "scripts", "tools", "build", "dist", "_backend",
                 "node_modules", "site-packages", "venv", ".venv", "docs_src"}
NON_CODE_FILES = {"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py",
                  "pavement.py", "bootstrap.py", "runtests.py", "docs.py", "exercises.py",
                  "pdm_build.py", "hatch_build.py"}
ROOT_META = {"PKG-INFO", "pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in",
             "tox.ini", "noxfile.py", "conftest.py", "pytest.ini", "system.toml"}


@dataclass(frozen=True, slots=True)
class PackPlan:
    """What a stage-0 wheel of one project will hold."""

    name: str
    version: str
    files: tuple[tuple[str, Path], ...]  # (path inside the wheel, source file)
    requires_dist: tuple[str, ...]
    requires_python: str | None
    entry_points: str


@dataclass(frozen=True, slots=True)
class NotPure:
    """Why a source tree cannot be packed without its backend."""

    reasons: tuple[str, ...]


# -- reading untrusted configuration ---------------------------------------------------
#
# Everything below reads pyproject.toml, setup.cfg, PKG-INFO and egg-info files that an
# sdist's author wrote.  Values are type-checked where they are read (a wrong type makes
# the tree "not pure": its own backend would fail on it too), and every path taken from
# them must stay inside the tree (a path leading out is refused as hostile).


class _Malformed(Exception):
    """A configuration value of the wrong type or form; the tree becomes :class:`NotPure`."""


def _table(doc: Any, *keys: str) -> dict[str, Any]:
    """``doc[keys[0]][keys[1]]...`` as a table; ``{}`` when absent."""
    for i, key in enumerate(keys):
        doc = doc.get(key, {})
        if not isinstance(doc, dict):
            raise _Malformed(f"[{'.'.join(keys[:i + 1])}] is not a table")
    return cast(dict[str, Any], doc)


def _str(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Malformed(f"{field} is not a string")
    return value


def _strs(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f"{field} is not a list of strings")
    return value


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Malformed(f"{field} is not a table of strings")
    return value


def _groups(value: Any, field: str) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Malformed(f"{field} is not a table")
    return {g: _str_map(items, f"{field}.{g}") for g, items in value.items()}


def _dotted(value: str, field: str) -> list[str]:
    """A dotted import name, split; anything else is malformed."""
    parts = value.split(".")
    if not all(p.isidentifier() for p in parts):
        raise _Malformed(f"{field} {value!r} is not a dotted import name")
    return parts


class _Tree:
    """A source tree and the rule that nothing is taken from outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = root.resolve()

    def path(self, rel: str, field: str) -> Path:
        """``root/rel``, refused when ``rel`` (or a link on the way) leads out of the tree."""
        if not isinstance(rel, str):
            raise _Malformed(f"{field} is not a string")
        target = self.root / rel
        if (not stays_inside(rel) and rel not in ("", ".")) or not within(self.root, target):
            raise _outside(self.root, f"{field} {rel!r} points outside the source tree")
        return target

    def read(self, rel: str, strict: bool = True) -> str | None:
        """The text of a file of the tree (None when there is no such file)."""
        path = self.root / rel
        if not path.is_file():
            return None
        if not within(self.root, path):
            raise _outside(self.root, f"{rel} is a link leading out of the source tree")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _Malformed(f"{rel} cannot be read ({exc.strerror or exc})") from exc
        try:
            return data.decode("utf-8", errors="strict" if strict else "replace")
        except UnicodeDecodeError as exc:
            raise _Malformed(f"{rel} is not UTF-8") from exc


def _outside(root: Path, detail: str) -> SourceError:
    return SourceError(
        f"{root.name}: stage-0 packing refused: {detail}. Nothing from outside an sdist is "
        "ever packed.",
        hint="This sdist is broken or hostile: pin another version with a constraint, or "
        "break its cycle with a seed instead (--seeds).",
    )


def _walk_files(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted; links to folders are not followed."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        out += [base / f for f in filenames if (base / f).is_file()]  # no broken links
    return sorted(out)


# -- reading project metadata --------------------------------------------------------


def _pkg_info(tree: _Tree) -> dict[str, list[str]]:
    text = tree.read("PKG-INFO", strict=False)
    if text is None:
        return {}
    msg = HeaderParser().parsestr(text)
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(str(value).strip())
    return out


def _egg_info(root: Path) -> Path | None:
    for candidate in sorted(root.glob("*.egg-info")) + sorted(root.glob("src/*.egg-info")):
        if candidate.is_dir():
            return candidate
    return None


def _requires_txt(text: str) -> list[str]:
    """Parse setuptools' ``requires.txt`` (sections are ``[extra]`` or ``[extra:marker]``)."""
    reqs: list[str] = []
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section is None:
            reqs.append(line)
            continue
        extra, _, marker = section.partition(":")
        conds = [f'extra == "{extra}"'] if extra else []
        if marker:
            conds.append(f"({marker})")
        req = Requirement(line)
        if req.marker is not None:
            conds.append(f"({req.marker})")
            req.marker = None
        reqs.append(f"{req}; {' and '.join(conds)}" if conds else str(req))
    return reqs


def _requires_dist(tree: _Tree, project: dict[str, Any], info: dict[str, list[str]]
                   ) -> list[str]:
    dynamic = set(_strs(project.get("dynamic"), "[project].dynamic"))
    static = "dependencies" not in dynamic and "optional-dependencies" not in dynamic
    if static and ("dependencies" in project or "optional-dependencies" in project):
        reqs = list(_strs(project.get("dependencies"), "[project].dependencies"))
        optional = _table(project, "optional-dependencies")
        for extra, deps in sorted(optional.items()):
            for dep in _strs(deps, f"[project.optional-dependencies].{extra}"):
                r = Requirement(dep)
                cond = f'extra == "{canonicalize_name(extra)}"'
                r_marker = f"({r.marker}) and {cond}" if r.marker else cond
                r.marker = None
                reqs.append(f"{r}; {r_marker}")
        return reqs
    if "requires-dist" in info:
        return info["requires-dist"]
    egg = _egg_info(tree.root)
    if egg is not None:
        text = tree.read(f"{egg.relative_to(tree.root).as_posix()}/requires.txt")
        if text is not None:
            return _requires_txt(text)
    return []


def read_pkg_info(root: Path) -> str | None:
    """The text of the tree's ``PKG-INFO`` (None when missing, a link out or unreadable)."""
    try:
        return _Tree(root).read("PKG-INFO", strict=False)
    except (_Malformed, SourceError):
        return None


def static_requires(pyproject: dict[str, Any], pkg_info: str | None
                    ) -> tuple[str, ...] | None:
    """The runtime requirements of a source tree that no backend can change, or None when
    they are not known without running it (or cannot be read).  Pure.

    ``[project].dependencies`` when the table does not list it in ``dynamic``; else the
    ``Requires-Dist`` of ``PKG-INFO`` (its text) when its Metadata-Version is 2.2 or later
    and its ``Dynamic`` does not name the field (PEP 643: then the backend must keep them).
    Extras' optional dependencies are not included.  A hint, never an error."""
    try:
        project = _table(pyproject, "project")
        dynamic = {d.lower() for d in _strs(project.get("dynamic"), "[project].dynamic")}
        if project and "dependencies" not in dynamic:
            reqs = tuple(_strs(project.get("dependencies"), "[project].dependencies"))
            for r in reqs:
                Requirement(r)
            return reqs
    except (_Malformed, InvalidRequirement):
        return None
    return final_requires(pkg_info) if pkg_info is not None else None


_BAD_IN_ENTRY_POINT = re.compile(r"[\x00-\x1f\x7f]")


def _entry_points(tree: _Tree, pyproject: dict[str, Any]) -> str:
    groups: dict[str, dict[str, str]] = {}
    project = _table(pyproject, "project")
    for key, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
        groups.setdefault(group, {}).update(_str_map(project.get(key), f"[project.{key}]"))
    for group, items in _groups(project.get("entry-points"), "[project.entry-points]").items():
        groups.setdefault(group, {}).update(items)
    poetry = _table(pyproject, "tool", "poetry")
    scripts = poetry.get("scripts", {})
    if not isinstance(scripts, dict):
        raise _Malformed("[tool.poetry.scripts] is not a table")
    for k, v in scripts.items():
        ref = v.get("reference", "") if isinstance(v, dict) else v
        groups.setdefault("console_scripts", {})[k] = _str(
            ref, f"[tool.poetry.scripts].{k}") or ""
    for group, items in _groups(poetry.get("plugins"), "[tool.poetry.plugins]").items():
        groups.setdefault(group, {}).update(items)
    flit = _table(pyproject, "tool", "flit")
    groups.setdefault("console_scripts", {}).update(
        _str_map(flit.get("scripts"), "[tool.flit.scripts]"))
    for group, items in _groups(flit.get("entrypoints"), "[tool.flit.entrypoints]").items():
        groups.setdefault(group, {}).update(items)
    egg = _egg_info(tree.root)
    text = (tree.read(f"{egg.relative_to(tree.root).as_posix()}/entry_points.txt")
            if egg is not None else None)
    if text is not None:
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            raise _Malformed(f"{egg.name if egg else ''}/entry_points.txt cannot be read: "
                             f"{exc.message}") from exc
        for section in parser.sections():
            groups.setdefault(section, {}).update(dict(parser.items(section)))
    cfg = _setup_cfg(tree)
    if cfg is not None and cfg.has_section("options.entry_points"):
        for group, value in cfg.items("options.entry_points"):
            for line in value.splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    groups.setdefault(group, {})[k.strip()] = v.strip()
    text = ""
    for group in sorted(groups):
        for k, v in groups[group].items():
            if (not group or not k or _BAD_IN_ENTRY_POINT.search(group + k + v)
                    or "]" in group or "[" in group or "=" in k or k.startswith(("[", "#", ";"))):
                raise _Malformed(f"the entry point {group!r} {k!r} = {v!r} is not valid")
        if groups[group]:
            text += f"[{group}]\n" + "".join(
                f"{k} = {v}\n" for k, v in sorted(groups[group].items())) + "\n"
    return text


def _setup_cfg(tree: _Tree) -> configparser.ConfigParser | None:
    try:
        text = tree.read("setup.cfg")
    except _Malformed:
        return None
    if text is None:
        return None
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(text)
    except configparser.Error:
        return None
    return cfg


# -- purity ------------------------------------------------------------------------


def impurities(root: Path, pyproject: dict[str, Any], packed: Iterable[str] = ()) -> list[str]:
    """Reasons the tree is not pure Python (an empty list when it is).

    Native sources count when they would be packed, or when anything declares extension
    modules or a native build backend; a stray C file elsewhere in the sdist (a Windows
    launcher, a demo) does not make a package impure.
    """
    reasons = []
    system = pyproject.get("build-system")
    backend = str(system.get("build-backend", "")) if isinstance(system, dict) else ""
    if any(backend.startswith(b) for b in NATIVE_BACKENDS):
        reasons.append(f"its build backend {backend} compiles native code")
    natives = [arc for arc in packed if PurePosixPath(arc).suffix.lower() in NATIVE_SUFFIXES]
    if natives:
        shown = ", ".join(natives[:5]) + (" ..." if len(natives) > 5 else "")
        reasons.append(f"it has native sources ({shown})")
    if (root / "Cargo.toml").is_file():
        reasons.append("it has a Cargo.toml (Rust)")
    setup_py = root / "setup.py"
    if setup_py.is_file() and within(root, setup_py):
        text = setup_py.read_text("utf-8", errors="replace")
        if re.search(r"\bext_modules\b|\bExtension\s*\(|\bcythonize\s*\(", text):
            reasons.append("its setup.py declares extension modules")
    tool = pyproject.get("tool")
    tool = tool if isinstance(tool, dict) else {}
    setuptools = tool.get("setuptools")
    if isinstance(setuptools, dict) and setuptools.get("ext-modules"):
        reasons.append("[tool.setuptools] declares ext-modules")
    for name in ("maturin", "scikit-build", "meson-python"):
        if name in tool:
            reasons.append(f"it is configured for {name}")
    return reasons


# -- layouts ------------------------------------------------------------------------


def _package_files(pkg_dir: Path, arc_prefix: str) -> list[tuple[str, Path]]:
    out = []
    for path in _walk_files(pkg_dir):
        if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        rel = path.relative_to(pkg_dir).as_posix()
        out.append((f"{arc_prefix}/{rel}" if arc_prefix else rel, path))
    return out


def _module(path: Path) -> list[tuple[str, Path]]:
    return [(path.name, path)] if path.is_file() else []


def _include(target: Path, arc: str) -> list[tuple[str, Path]]:
    """A folder (every file below it) or a single file, placed at ``arc`` in the wheel."""
    if target.is_dir() and not target.is_symlink():
        return _package_files(target, arc)
    return [(arc, target)] if target.is_file() else []


def _find_packages(where: Path, include: Iterable[str] = ("*",),
                   exclude: Iterable[str] = (), namespaces: bool = True) -> list[str]:
    """Dotted names of the packages under ``where`` (setuptools' find, roughly)."""
    import fnmatch

    found = []
    if not where.is_dir():
        return []
    for init in _walk_files(where):
        if init.suffix != ".py":
            continue
        pkg = init.parent
        if pkg == where:
            continue
        rel = pkg.relative_to(where).parts
        if any(p in NON_CODE_DIRS or not p.isidentifier() for p in rel):
            continue
        if not namespaces and not (pkg / "__init__.py").is_file():
            continue
        dotted = ".".join(rel)
        if dotted in found:
            continue
        if any(fnmatch.fnmatch(dotted, pat) for pat in include) and not any(
                fnmatch.fnmatch(dotted, pat) for pat in exclude):
            found.append(dotted)
    tops = sorted({d.split(".")[0] for d in found})
    return tops


def _from_dirs(tree: _Tree, packages: Iterable[str], package_dir: dict[str, str]
               ) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    base_rel = package_dir.get("", "")
    base = tree.path(base_rel, "package-dir ''") if base_rel else tree.root
    for dotted in packages:
        parts = _dotted(dotted, "the package")
        top = parts[0]
        if top in package_dir:
            src = tree.path(package_dir[top], f"package-dir {top!r}")
        else:
            src = base / Path(*parts)
        if not within(tree.root, src):
            raise _outside(tree.root, f"the package {dotted!r} is a link leading out")
        files += _package_files(src, dotted.replace(".", "/"))
    return files


def _setuptools_layout(tree: _Tree, pyproject: dict[str, Any]
                       ) -> list[tuple[str, Path]] | None:
    root = tree.root
    conf = _table(pyproject, "tool", "setuptools")
    cfg = _setup_cfg(tree)
    package_dir: dict[str, str] = {}
    packages: list[str] = []
    modules: list[str] = []
    if "packages" in conf or "package-dir" in conf or "py-modules" in conf:
        package_dir = dict(_str_map(conf.get("package-dir"), "[tool.setuptools].package-dir"))
        pk = conf.get("packages")
        if isinstance(pk, list):
            packages = _strs(pk, "[tool.setuptools].packages")
        else:
            find = _table(pk, "find") if isinstance(pk, dict) else {}
            field = "[tool.setuptools.packages.find]"
            wheres = _strs(find.get("where", [package_dir.get("", ".")]), f"{field}.where")
            include = _strs(find.get("include", ["*"]), f"{field}.include")
            exclude = _strs(find.get("exclude", []), f"{field}.exclude")
            namespaces = find.get("namespaces", True)
            if not isinstance(namespaces, bool):
                raise _Malformed(f"{field}.namespaces is not a boolean")
            for where in wheres:
                packages += _find_packages(tree.path(where, f"{field}.where"), include,
                                           exclude, namespaces)
                if where not in (".", "") and not package_dir.get(""):
                    package_dir[""] = where
        modules = _strs(conf.get("py-modules"), "[tool.setuptools].py-modules")
    elif cfg is not None and cfg.has_section("options") and (
            cfg.has_option("options", "packages") or cfg.has_option("options", "py_modules")):
        raw_dir = cfg.get("options", "package_dir", fallback="").strip()
        for line in raw_dir.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                package_dir[k.strip()] = v.strip()
        spec = cfg.get("options", "packages", fallback="").strip()
        if spec.startswith("find"):
            where = cfg.get("options.packages.find", "where",
                            fallback=package_dir.get("", ".")).strip()
            include = cfg.get("options.packages.find", "include", fallback="*").split()
            exclude = cfg.get("options.packages.find", "exclude", fallback="").split()
            packages = _find_packages(tree.path(where or ".", "setup.cfg packages.find where"),
                                      include or ["*"], exclude)
            if where not in (".", ""):
                package_dir.setdefault("", where)
        else:
            packages = [p.strip() for p in re.split(r"[\s,]+", spec) if p.strip()]
        modules = [m for m in re.split(r"[\s,]+",
                                       cfg.get("options", "py_modules", fallback="")) if m]
    else:
        return None
    files = _from_dirs(tree, _tops(packages), package_dir)
    base_rel = package_dir.get("", "")
    base = tree.path(base_rel, "package-dir ''") if base_rel else root
    for m in modules:
        if not m.isidentifier():
            raise _Malformed(f"the module {m!r} is not an import name")
        files += _module(base / f"{m}.py")
    return files


def _tops(dotted: Iterable[str]) -> list[str]:
    """Keep the outermost packages (subpackages come along with their parents)."""
    names = sorted(set(dotted))
    return [n for n in names if not any(n.startswith(p + ".") for p in names)]


def _flit_layout(tree: _Tree, pyproject: dict[str, Any], import_name: str | None
                 ) -> list[tuple[str, Path]] | None:
    module = _str(_table(pyproject, "tool", "flit", "module").get("name"),
                  "[tool.flit.module].name")
    backend = _table(pyproject, "build-system").get("build-backend", "")
    if module is None and isinstance(backend, str) and backend.startswith("flit"):
        module = import_name
    if module is None:
        return None
    path = Path(*_dotted(module, "[tool.flit.module].name"))
    for base in (tree.root, tree.root / "src"):
        if (base / path).is_dir() and within(tree.root, base / path):
            return _package_files(base / path, path.as_posix())
        if (base / path.with_suffix(".py")).is_file():
            return [(path.with_suffix(".py").as_posix(), base / path.with_suffix(".py"))]
    return None


def _hatch_layout(tree: _Tree, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    field = "[tool.hatch.build.targets.wheel]"
    wheel = _table(pyproject, "tool", "hatch", "build", "targets", "wheel")
    packages = _strs(wheel.get("packages"), f"{field}.packages")
    key = "packages" if packages else "only-include"
    entries = packages or _strs(wheel.get("only-include"), f"{field}.only-include")
    if not entries:
        return None
    sources = wheel.get("sources", [])
    if isinstance(sources, list):
        sources = _strs(sources, f"{field}.sources")
    else:
        sources = _str_map(sources, f"{field}.sources")
    files: list[tuple[str, Path]] = []
    for entry in entries:
        src = tree.path(entry, f"{field}.{key}")
        arc = entry
        if isinstance(sources, list):
            for prefix in sources:
                if entry.startswith(prefix.rstrip("/") + "/"):
                    arc = entry[len(prefix.rstrip("/")) + 1:]
        else:
            for prefix, repl in sources.items():
                if entry.startswith(prefix):
                    arc = (repl + entry[len(prefix):]).lstrip("/")
        if packages and not sources:
            arc = PurePosixPath(entry).name
        files += _include(src, arc)
    return files


def _poetry_layout(tree: _Tree, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    packages = _table(pyproject, "tool", "poetry").get("packages")
    if not packages:
        return None
    if not isinstance(packages, list):
        raise _Malformed("[tool.poetry].packages is not a list")
    files: list[tuple[str, Path]] = []
    for p in packages:
        if not isinstance(p, dict):
            raise _Malformed("[tool.poetry].packages holds something other than tables")
        include = _str(p.get("include"), "[tool.poetry].packages include")
        if not include:
            raise _Malformed("[tool.poetry].packages has an entry without 'include'")
        base = _str(p.get("from"), "[tool.poetry].packages from") or ""
        if base:
            tree.path(base, "[tool.poetry].packages from")
        rel = f"{base}/{include}" if base else include
        files += _include(tree.path(rel, "[tool.poetry].packages include"), include)
    return files


def _pdm_layout(tree: _Tree, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    conf = _table(pyproject, "tool", "pdm", "build")
    package_dir = _str(conf.get("package-dir"), "[tool.pdm.build].package-dir") or ""
    includes = _strs(conf.get("includes"), "[tool.pdm.build].includes")
    if not (package_dir or includes):
        return None
    base = tree.path(package_dir, "[tool.pdm.build].package-dir") if package_dir else tree.root
    files: list[tuple[str, Path]] = []
    for inc in includes or _find_packages(base):
        if package_dir and inc.startswith(package_dir + "/"):
            inc = inc[len(package_dir) + 1:]
        rel = f"{package_dir}/{inc}" if package_dir else inc
        files += _include(tree.path(rel, "[tool.pdm.build].includes"), inc)
    return files


def _conventional_layout(tree: _Tree, import_path: str | None) -> list[tuple[str, Path]]:
    root = tree.root
    src = root / "src"
    if src.is_dir() and not src.is_symlink():
        files: list[tuple[str, Path]] = []
        for child in sorted(src.iterdir()):
            if child.is_dir() and not child.is_symlink() and child.name.isidentifier() and any(
                    p.suffix == ".py" for p in _walk_files(child)):
                files += _package_files(child, child.name)
            elif child.suffix == ".py":
                files.append((child.name, child))
        if files:
            return files
    if (root / "__init__.py").is_file() and import_path:  # the root is the package itself
        return [(f"{import_path}/{arc}", path) for arc, path in _package_files(root, "")
                if not _root_meta(arc)]
    egg = _egg_info(root)
    top_level = (tree.read(f"{egg.relative_to(root).as_posix()}/top_level.txt", strict=False)
                 if egg is not None else None)
    named = {n.strip() for n in top_level.split()} if top_level is not None else set()
    if import_path:
        named.add(import_path.split("/")[0])
    files = []
    for child in sorted(root.iterdir()):
        if child.name in NON_CODE_DIRS or child.name.startswith((".", "_")):
            continue
        stem = child.name[:-3] if child.suffix == ".py" else child.name
        if child.is_dir() and not child.is_symlink() and child.name.isidentifier() and (
                (child / "__init__.py").is_file() or any(child.glob("*/__init__.py"))
                or (child.name in named and any(p.suffix == ".py"
                                                for p in _walk_files(child)))):
            files += _package_files(child, child.name)
        elif (child.suffix == ".py" and stem.isidentifier() and child.name not in NON_CODE_FILES
              and not stem.startswith("test_") and not stem.endswith("_test")):
            files.append((child.name, child))
    return files


def _root_meta(arc: str) -> bool:
    first = arc.split("/")[0]
    return (first in ROOT_META or first in NON_CODE_DIRS or first.startswith(".")
            or first.endswith(".egg-info") or first.upper().startswith(("README", "LICENSE",
                                                                          "CHANGES", "NEWS")))


def _check_files(tree: _Tree, files: list[tuple[str, Path]]) -> None:
    """Every file from inside the tree, every name inside the wheel a plain relative path."""
    for arc, path in files:
        if not within(tree.root, path):
            raise _outside(tree.root, f"{path.relative_to(tree.root)!s} is a link leading "
                           "out of the source tree" if path.is_relative_to(tree.root)
                           else f"{path} is outside the source tree")
        parts = arc.split("/")
        if (arc.startswith("/") or any(p in ("", ".", "..") for p in parts)
                or _BAD_IN_ENTRY_POINT.search(arc) or "\\" in arc):
            raise _Malformed(f"the file name {arc!r} cannot be placed in a wheel")
        try:
            arc.encode("utf-8")
        except UnicodeEncodeError:
            raise _Malformed(f"the file name {arc!r} is not valid UTF-8") from None


def _import_path(spelled: object) -> str | None:
    """The import path a project name spells (``jaraco.text`` -> ``jaraco/text``)."""
    if not isinstance(spelled, str):
        return None
    parts = [part.replace("-", "_") for part in spelled.split(".")]
    return "/".join(parts) if all(p.isidentifier() for p in parts) else None


def inspect(root: Path, name: str, version: str) -> PackPlan | NotPure:
    """Plan a stage-0 wheel of the tree at ``root`` (the project ``name`` ``version``).

    Reads files only.  A configuration of the wrong type or form answers :class:`NotPure`
    with the reason; a path that leads out of the tree raises :class:`SourceError`.
    """
    pyproject = read_pyproject(root)
    tree = _Tree(root)
    try:
        return _inspect(tree, pyproject, name, version)
    except _Malformed as exc:
        return NotPure((f"its configuration cannot be read: {exc}",))
    except InvalidRequirement as exc:
        return NotPure((f"its dependencies cannot be read ({exc})",))
    except OSError as exc:  # a configured name too long for the filesystem, for one
        return NotPure((f"its files cannot be read: {exc.strerror or exc}",))


def _inspect(tree: _Tree, pyproject: dict[str, Any], name: str, version: str
             ) -> PackPlan | NotPure:
    root = tree.root
    project = _table(pyproject, "project")
    info = _pkg_info(tree)
    spelled = project.get("name") or next(iter(info.get("name", [])), name)
    import_path = _import_path(spelled) or _import_path(name)
    import_name = import_path.replace("/", ".") if import_path else None
    files = (_setuptools_layout(tree, pyproject)
             or _flit_layout(tree, pyproject, import_name)
             or _hatch_layout(tree, pyproject)
             or _poetry_layout(tree, pyproject)
             or _pdm_layout(tree, pyproject))
    if not files:
        files = _conventional_layout(tree, import_path)
    _check_files(tree, files)
    reasons = impurities(root, pyproject, [arc for arc, _ in files])
    if reasons:
        return NotPure(tuple(reasons))
    if not any(arc.endswith(".py") for arc, _ in files):
        return NotPure(("no importable Python package or module was found in the sdist",))
    requires = _requires_dist(tree, project, info)
    for r in requires:
        Requirement(r)
    rp = _str(project.get("requires-python"), "[project].requires-python") or next(
        iter(info.get("requires-python", [])), None)
    if rp is not None:
        try:
            SpecifierSet(rp)
        except InvalidSpecifier:
            raise _Malformed(f"requires-python {rp!r} is not a version specifier") from None
    return PackPlan(name, version, tuple(sorted(dict(files).items())), tuple(requires), rp,
                    _entry_points(tree, pyproject))


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def pack(plan: PackPlan, dest: Path, source_date_epoch: int) -> Path:
    """Write the stage-0 wheel of ``plan`` into ``dest``; deterministic."""
    dist = re.sub(r"[-_.]+", "_", plan.name).lower()
    version = plan.version
    di = f"{dist}-{version}.dist-info"
    entries: dict[str, bytes] = {arc: path.read_bytes() for arc, path in plan.files}
    meta = ["Metadata-Version: 2.1", f"Name: {plan.name}", f"Version: {version}"]
    if plan.requires_python:
        meta.append(f"Requires-Python: {plan.requires_python}")
    meta += [f"Requires-Dist: {r}" for r in plan.requires_dist]
    entries[f"{di}/METADATA"] = ("\n".join(meta) + "\n").encode()
    entries[f"{di}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: wheelstrap-srcpack (stage 0)\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    if plan.entry_points:
        entries[f"{di}/entry_points.txt"] = plan.entry_points.encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arc, data in sorted(entries.items()):
        writer.writerow([arc, _record_hash(data), len(data)])
    writer.writerow([f"{di}/RECORD", "", ""])
    entries[f"{di}/RECORD"] = record.getvalue().encode()
    stamp = time.gmtime(min(max(source_date_epoch, ZIP_EPOCH), ZIP_LATEST))[:6]
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for arc in sorted(entries):
            info = zipfile.ZipInfo(arc, stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[arc])
    tmp.replace(wheel)
    return wheel
