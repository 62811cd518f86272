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
import hashlib
import re
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .sources import read_pyproject

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


# -- reading project metadata --------------------------------------------------------


def _pkg_info(root: Path) -> dict[str, list[str]]:
    path = root / "PKG-INFO"
    if not path.is_file():
        return {}
    msg = HeaderParser().parsestr(path.read_text("utf-8", errors="replace"))
    out: dict[str, list[str]] = {}
    for key, value in msg.items():
        out.setdefault(key.lower(), []).append(str(value).strip())
    return out


def _egg_info(root: Path) -> Path | None:
    for candidate in sorted(root.glob("*.egg-info")) + sorted(root.glob("src/*.egg-info")):
        if candidate.is_dir():
            return candidate
    return None


def _requires_txt(path: Path) -> list[str]:
    """Parse setuptools' ``requires.txt`` (sections are ``[extra]`` or ``[extra:marker]``)."""
    reqs: list[str] = []
    section: str | None = None
    for raw in path.read_text("utf-8").splitlines():
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


def _requires_dist(root: Path, project: dict[str, Any], info: dict[str, list[str]]
                   ) -> list[str]:
    dynamic = set(project.get("dynamic", []))
    static = "dependencies" not in dynamic and "optional-dependencies" not in dynamic
    if static and ("dependencies" in project or "optional-dependencies" in project):
        reqs = list(project.get("dependencies", []))
        for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
            for dep in deps:
                r = Requirement(dep)
                cond = f'extra == "{canonicalize_name(extra)}"'
                r_marker = f"({r.marker}) and {cond}" if r.marker else cond
                r.marker = None
                reqs.append(f"{r}; {r_marker}")
        return reqs
    if "requires-dist" in info:
        return info["requires-dist"]
    egg = _egg_info(root)
    if egg is not None and (egg / "requires.txt").is_file():
        return _requires_txt(egg / "requires.txt")
    return []


def _entry_points(root: Path, pyproject: dict[str, Any]) -> str:
    groups: dict[str, dict[str, str]] = {}
    project = pyproject.get("project", {})
    tool = pyproject.get("tool", {})
    for key, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
        groups.setdefault(group, {}).update(project.get(key, {}))
    for group, items in project.get("entry-points", {}).items():
        groups.setdefault(group, {}).update(items)
    poetry = tool.get("poetry", {})
    groups.setdefault("console_scripts", {}).update(
        {k: v if isinstance(v, str) else v.get("reference", "") for k, v in
         poetry.get("scripts", {}).items()})
    for group, items in poetry.get("plugins", {}).items():
        groups.setdefault(group, {}).update(items)
    flit = tool.get("flit", {})
    groups.setdefault("console_scripts", {}).update(flit.get("scripts", {}))
    for group, items in flit.get("entrypoints", {}).items():
        groups.setdefault(group, {}).update(items)
    egg = _egg_info(root)
    if egg is not None and (egg / "entry_points.txt").is_file():
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string((egg / "entry_points.txt").read_text("utf-8"))
        for section in parser.sections():
            groups.setdefault(section, {}).update(dict(parser.items(section)))
    cfg = _setup_cfg(root)
    if cfg is not None and cfg.has_section("options.entry_points"):
        for group, value in cfg.items("options.entry_points"):
            for line in value.splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    groups.setdefault(group, {})[k.strip()] = v.strip()
    text = ""
    for group in sorted(groups):
        if groups[group]:
            text += f"[{group}]\n" + "".join(
                f"{k} = {v}\n" for k, v in sorted(groups[group].items())) + "\n"
    return text


def _setup_cfg(root: Path) -> configparser.ConfigParser | None:
    path = root / "setup.cfg"
    if not path.is_file():
        return None
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(path.read_text("utf-8"))
    except (configparser.Error, UnicodeDecodeError):
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
    backend = str(pyproject.get("build-system", {}).get("build-backend", ""))
    if any(backend.startswith(b) for b in NATIVE_BACKENDS):
        reasons.append(f"its build backend {backend} compiles native code")
    natives = [arc for arc in packed if PurePosixPath(arc).suffix.lower() in NATIVE_SUFFIXES]
    if natives:
        shown = ", ".join(natives[:5]) + (" ..." if len(natives) > 5 else "")
        reasons.append(f"it has native sources ({shown})")
    if (root / "Cargo.toml").is_file():
        reasons.append("it has a Cargo.toml (Rust)")
    setup_py = root / "setup.py"
    if setup_py.is_file():
        text = setup_py.read_text("utf-8", errors="replace")
        if re.search(r"\bext_modules\b|\bExtension\s*\(|\bcythonize\s*\(", text):
            reasons.append("its setup.py declares extension modules")
    tool = pyproject.get("tool", {})
    if tool.get("setuptools", {}).get("ext-modules"):
        reasons.append("[tool.setuptools] declares ext-modules")
    for name in ("maturin", "scikit-build", "meson-python", "cibuildwheel-native"):
        if name in tool and name != "cibuildwheel-native":
            reasons.append(f"it is configured for {name}")
    return reasons


# -- layouts ------------------------------------------------------------------------


def _package_files(pkg_dir: Path, arc_prefix: str) -> list[tuple[str, Path]]:
    out = []
    for path in sorted(pkg_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        rel = path.relative_to(pkg_dir).as_posix()
        out.append((f"{arc_prefix}/{rel}" if arc_prefix else rel, path))
    return out


def _module(path: Path) -> list[tuple[str, Path]]:
    return [(path.name, path)] if path.is_file() else []


def _include(target: Path, arc: str) -> list[tuple[str, Path]]:
    """A folder (every file below it) or a single file, placed at ``arc`` in the wheel."""
    if target.is_dir():
        return _package_files(target, arc)
    return [(arc, target)] if target.is_file() else []


def _find_packages(where: Path, include: Iterable[str] = ("*",),
                   exclude: Iterable[str] = (), namespaces: bool = True) -> list[str]:
    """Dotted names of the packages under ``where`` (setuptools' find, roughly)."""
    import fnmatch

    found = []
    for init in sorted(where.rglob("*.py")):
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


def _from_dirs(root: Path, packages: Iterable[str], package_dir: dict[str, str]
               ) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    base = root / package_dir.get("", "")
    for dotted in packages:
        top = dotted.split(".")[0]
        src = root / package_dir[top] if top in package_dir else base / Path(*dotted.split("."))
        files += _package_files(src, dotted.replace(".", "/"))
    return files


def _setuptools_layout(root: Path, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    conf = pyproject.get("tool", {}).get("setuptools")
    cfg = _setup_cfg(root)
    package_dir: dict[str, str] = {}
    packages: list[str] = []
    modules: list[str] = []
    if isinstance(conf, dict) and ("packages" in conf or "package-dir" in conf
                                   or "py-modules" in conf):
        package_dir = dict(conf.get("package-dir", {}))
        pk = conf.get("packages")
        if isinstance(pk, list):
            packages = pk
        else:
            find = pk.get("find", {}) if isinstance(pk, dict) else {}
            for where in find.get("where", [package_dir.get("", ".")]):
                packages += _find_packages(root / where, find.get("include", ["*"]),
                                           find.get("exclude", []), find.get("namespaces", True))
                if where not in (".", "") and not package_dir.get(""):
                    package_dir[""] = where
        modules = list(conf.get("py-modules", []))
    elif cfg is not None and cfg.has_section("options") and (
            cfg.has_option("options", "packages") or cfg.has_option("options", "py_modules")):
        raw_dir = cfg.get("options", "package_dir", fallback="").strip()
        for line in raw_dir.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                package_dir[k.strip()] = v.strip()
        spec = cfg.get("options", "packages", fallback="").strip()
        if spec.startswith("find"):
            where = cfg.get("options.packages.find", "where", fallback=package_dir.get("", "."))
            include = cfg.get("options.packages.find", "include", fallback="*").split()
            exclude = cfg.get("options.packages.find", "exclude", fallback="").split()
            packages = _find_packages(root / where.strip(), include or ["*"], exclude)
            if where.strip() not in (".", ""):
                package_dir.setdefault("", where.strip())
        else:
            packages = [p.strip() for p in re.split(r"[\s,]+", spec) if p.strip()]
        modules = [m for m in re.split(r"[\s,]+",
                                       cfg.get("options", "py_modules", fallback="")) if m]
    else:
        return None
    files = _from_dirs(root, _tops(packages), package_dir)
    base = root / package_dir.get("", "")
    for m in modules:
        files += _module(base / f"{m}.py")
    return files


def _tops(dotted: Iterable[str]) -> list[str]:
    """Keep the outermost packages (subpackages come along with their parents)."""
    names = sorted(set(dotted))
    return [n for n in names if not any(n.startswith(p + ".") for p in names)]


def _flit_layout(root: Path, pyproject: dict[str, Any], import_name: str
                 ) -> list[tuple[str, Path]] | None:
    module = pyproject.get("tool", {}).get("flit", {}).get("module", {}).get("name")
    if module is None and pyproject.get("build-system", {}).get(
            "build-backend", "").startswith("flit"):
        module = import_name
    if module is None:
        return None
    path = Path(*module.split("."))
    for base in (root, root / "src"):
        if (base / path).is_dir():
            return _package_files(base / path, path.as_posix())
        if (base / path.with_suffix(".py")).is_file():
            return [(path.with_suffix(".py").as_posix(), base / path.with_suffix(".py"))]
    return None


def _hatch_layout(root: Path, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    wheel = pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get(
        "targets", {}).get("wheel", {})
    entries = wheel.get("packages") or wheel.get("only-include")
    if not entries:
        return None
    sources = wheel.get("sources", [])
    files: list[tuple[str, Path]] = []
    for entry in entries:
        src = root / entry
        arc = entry
        if isinstance(sources, list):
            for prefix in sources:
                if entry.startswith(prefix.rstrip("/") + "/"):
                    arc = entry[len(prefix.rstrip("/")) + 1:]
        elif isinstance(sources, dict):
            for prefix, repl in sources.items():
                if entry.startswith(prefix):
                    arc = (repl + entry[len(prefix):]).lstrip("/")
        if wheel.get("packages") and not sources:
            arc = PurePosixPath(entry).name
        files += _include(src, arc)
    return files


def _poetry_layout(root: Path, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    packages = pyproject.get("tool", {}).get("poetry", {}).get("packages")
    if not packages:
        return None
    files: list[tuple[str, Path]] = []
    for p in packages:
        files += _include(root / p.get("from", "") / p["include"], p["include"])
    return files


def _pdm_layout(root: Path, pyproject: dict[str, Any]) -> list[tuple[str, Path]] | None:
    conf = pyproject.get("tool", {}).get("pdm", {}).get("build", {})
    if not conf or not (conf.get("package-dir") or conf.get("includes")):
        return None
    base = root / conf.get("package-dir", "")
    includes = conf.get("includes") or _find_packages(base)
    files: list[tuple[str, Path]] = []
    for inc in includes:
        inc = inc[len(conf.get("package-dir", "")):].lstrip("/") if inc.startswith(
            conf.get("package-dir", "") + "/") else inc
        files += _include(base / inc, inc)
    return files


def _conventional_layout(root: Path, import_path: str) -> list[tuple[str, Path]]:
    src = root / "src"
    if src.is_dir():
        files: list[tuple[str, Path]] = []
        for child in sorted(src.iterdir()):
            if child.is_dir() and child.name.isidentifier() and any(child.rglob("*.py")):
                files += _package_files(child, child.name)
            elif child.suffix == ".py":
                files.append((child.name, child))
        if files:
            return files
    if (root / "__init__.py").is_file():  # a flat sdist: the root is the package itself
        return [(f"{import_path}/{arc}", path) for arc, path in _package_files(root, "")
                if not _root_meta(arc)]
    egg = _egg_info(root)
    top_level = egg / "top_level.txt" if egg is not None else None
    named = ({n.strip() for n in top_level.read_text("utf-8").split()}
             if top_level is not None and top_level.is_file() else set())
    named.add(import_path.split("/")[0])
    files = []
    for child in sorted(root.iterdir()):
        if child.name in NON_CODE_DIRS or child.name.startswith((".", "_")):
            continue
        stem = child.name[:-3] if child.suffix == ".py" else child.name
        if child.is_dir() and child.name.isidentifier() and (
                (child / "__init__.py").is_file() or any(child.glob("*/__init__.py"))
                or (child.name in named and any(child.rglob("*.py")))):
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


def inspect(root: Path, name: str, version: str) -> PackPlan | NotPure:
    """Plan a stage-0 wheel of the tree at ``root`` (the project ``name`` ``version``)."""
    pyproject = read_pyproject(root)
    project = pyproject.get("project", {})
    info = _pkg_info(root)
    spelled = project.get("name") or next(iter(info.get("name", [])), name)
    import_path = "/".join(part.replace("-", "_") for part in str(spelled).split("."))
    import_name = import_path.replace("/", ".")
    files = (_setuptools_layout(root, pyproject)
             or _flit_layout(root, pyproject, import_name)
             or _hatch_layout(root, pyproject)
             or _poetry_layout(root, pyproject)
             or _pdm_layout(root, pyproject))
    if not files:
        files = _conventional_layout(root, import_path)
    reasons = impurities(root, pyproject, [arc for arc, _ in files])
    if reasons:
        return NotPure(tuple(reasons))
    if not any(arc.endswith(".py") for arc, _ in files):
        return NotPure(("no importable Python package or module was found in the sdist",))
    try:
        requires = _requires_dist(root, project, info)
        for r in requires:
            Requirement(r)
    except InvalidRequirement as exc:
        return NotPure((f"its dependencies cannot be read ({exc})",))
    rp: str | None = project.get("requires-python") or next(
        iter(info.get("requires-python", [])), None)
    return PackPlan(name, version, tuple(sorted(dict(files).items())), tuple(requires), rp,
                    _entry_points(root, pyproject))


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
    record = [f"{arc},{_record_hash(data)},{len(data)}" for arc, data in sorted(entries.items())]
    record.append(f"{di}/RECORD,,")
    entries[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    stamp = time.gmtime(max(source_date_epoch, 315532800))[:6]
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
