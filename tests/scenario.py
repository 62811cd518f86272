"""Synthetic sdists with tiny PEP 517 backends, and indexes that serve them."""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BACKEND_SOURCE = (Path(__file__).parent / "tinybackend.py").read_text()
EPOCH = 1700000000


#: whether synthetic sdists promise their runtime requirements by default
STATIC_DEFAULT = os.environ.get("WHEELSTRAP_TEST_STATIC", "") == "1"


@dataclass
class Pkg:
    """One synthetic project version.

    ``backend=None``: builds with its own in-tree tiny backend (``backend-path``).
    Otherwise ``backend`` names the module of an installed backend package.
    ``build_requires`` is what ``[build-system].requires`` says.
    ``provides_backend``: the package's importable module *is* a tiny backend, which
    imports ``backend_imports`` when loaded (so those must be in the build environment).
    """

    name: str
    version: str = "1.0"
    deps: list[str] = field(default_factory=list)
    build_requires: list[str] = field(default_factory=list)
    backend: str | None = None
    dynamic: list[str] = field(default_factory=list)
    provides_backend: bool = False
    backend_imports: list[str] = field(default_factory=list)
    requires_python: str | None = None
    extras: dict[str, list[str]] = field(default_factory=dict)
    extra_files: dict[str, str] = field(default_factory=dict)
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    code: str | None = None  # the module's __init__.py, instead of the default
    handshake: bool = False  # build_wheel waits for GO in its tree (see tinybackend)
    metadata: list[str] = field(default_factory=list)  # more METADATA lines of its wheel
    # PKG-INFO promises the runtime requirements (Metadata-Version 2.2, PEP 643), as
    # the tiny backend will write them into the wheel
    static: bool = STATIC_DEFAULT

    @property
    def module(self) -> str:
        return self.name.replace("-", "_").replace(".", "_")

    @property
    def filename(self) -> str:
        return f"{self.module}-{self.version}.tar.gz"

    def pyproject(self) -> str:
        lines = ["[build-system]"]
        reqs = ", ".join(f'"{r}"' for r in self.build_requires)
        lines.append(f"requires = [{reqs}]")
        if self.backend is None:
            lines += ['build-backend = "tinybackend"', 'backend-path = ["_backend"]']
        else:
            lines.append(f'build-backend = "{self.backend}"')
        deps = ", ".join(f'"{d}"' for d in self.deps)
        lines += ["", "[project]", f'name = "{self.name}"', f'version = "{self.version}"',
                  f"dependencies = [{deps}]"]
        if self.requires_python:
            lines.append(f'requires-python = "{self.requires_python}"')
        if self.extras:
            lines.append("[project.optional-dependencies]")
            for extra, reqs in self.extras.items():
                lines.append(f"{extra} = [{', '.join(repr(r) for r in reqs)}]".replace("'", '"'))
        for group, items in self.entry_points.items():
            lines.append(f'[project.entry-points."{group}"]')
            lines += [f'{k} = "{v}"' for k, v in items.items()]
        lines += ["", "[tool.tiny]", f'packages = ["{self.module}"]']
        if self.dynamic:  # JSON strings are TOML strings: quotes inside survive
            lines.append(f"dynamic-requires = {json.dumps(self.dynamic)}")
        if self.handshake:
            lines.append("handshake = true")
        if self.metadata:
            lines.append(f"metadata = {json.dumps(self.metadata)}")
        return "\n".join(lines) + "\n"

    def pkg_info(self) -> str:
        if not self.static:
            return f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n"
        lines = ["Metadata-Version: 2.2", f"Name: {self.name}", f"Version: {self.version}"]
        lines += [f"Requires-Dist: {d}" for d in self.deps]
        for extra, deps in sorted(self.extras.items()):
            lines.append(f"Provides-Extra: {extra}")
            lines += [f'Requires-Dist: {d}; extra == "{extra}"' if ";" not in d
                      else f'Requires-Dist: {d} and extra == "{extra}"' for d in deps]
        return "\n".join(lines) + "\n"

    def tree(self) -> dict[str, str]:
        files = {"pyproject.toml": self.pyproject(), "PKG-INFO": self.pkg_info()}
        if self.backend is None:
            files["_backend/tinybackend.py"] = BACKEND_SOURCE
        if self.code is not None:
            files[f"{self.module}/__init__.py"] = self.code
        elif self.provides_backend:
            imports = "".join(f"import {m}  # noqa\n" for m in self.backend_imports)
            files[f"{self.module}/__init__.py"] = imports + BACKEND_SOURCE
        else:
            files[f"{self.module}/__init__.py"] = f"NAME = {self.name!r}\n"
        files.update(self.extra_files)
        return files


def make_sdist(pkg: Pkg, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / pkg.filename
    top = f"{pkg.module}-{pkg.version}"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, text in sorted(pkg.tree().items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def make_dists(pkgs: list[Pkg], folder: Path) -> Path:
    for p in pkgs:
        make_sdist(p, folder)
    return folder


def write_static_index(folder: Path, pkgs: list[Pkg], *, yanked: set[str] = frozenset(),
                       requires_python: dict[str, str] | None = None) -> Path:
    """A file:// simple index for the sdists in ``folder`` (which must exist)."""
    requires_python = requires_python or {}
    simple = folder / "simple"
    by_name: dict[str, list[Pkg]] = {}
    for p in pkgs:
        by_name.setdefault(p.name.lower().replace("_", "-").replace(".", "-"), []).append(p)
    for name, versions in by_name.items():
        links = []
        for p in versions:
            sha = hashlib.sha256((folder / p.filename).read_bytes()).hexdigest()
            attrs = ""
            if p.filename in requires_python:
                attrs += f' data-requires-python="{html.escape(requires_python[p.filename])}"'
            if p.filename in yanked:
                attrs += ' data-yanked=""'
            links.append(f'<a href="../../{p.filename}#sha256={sha}"{attrs}>{p.filename}</a>')
        (simple / name).mkdir(parents=True, exist_ok=True)
        (simple / name / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return simple


#: ``write_json_index``: leave the file's upload-time out of the page
NO_TIME = object()


def write_json_index(folder: Path, pkgs: list[Pkg], upload_times: dict[str, object],
                     *, html: bool = False) -> Path:
    """A file:// simple index of PEP 691 JSON pages (API 1.1, PEP 700) for the sdists in
    ``folder``: ``upload_times`` maps a file name to its ``upload-time`` value, written
    as it is (a malformed one included); a file not in it, or mapped to ``NO_TIME``, has
    none.  ``html``: write the HTML pages beside them too (the JSON page wins)."""
    simple = write_static_index(folder, pkgs) if html else folder / "simple"
    by_name: dict[str, list[Pkg]] = {}
    for p in pkgs:
        by_name.setdefault(p.name.lower().replace("_", "-").replace(".", "-"), []).append(p)
    for name, versions in by_name.items():
        files = []
        for p in versions:
            data = (folder / p.filename).read_bytes()
            entry: dict[str, object] = {"filename": p.filename, "url": f"../../{p.filename}",
                                        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                                        "size": len(data)}
            when = upload_times.get(p.filename, NO_TIME)
            if when is not NO_TIME:
                entry["upload-time"] = when
            files.append(entry)
        doc = {"meta": {"api-version": "1.1"}, "name": name, "files": files,
               "versions": sorted({p.version for p in versions})}
        (simple / name).mkdir(parents=True, exist_ok=True)
        (simple / name / "index.json").write_text(json.dumps(doc, indent=1) + "\n")
    return simple


def build_wheel(pkg: Pkg, dest: Path, inject: list[tuple[str, str]] | None = None,
                by_backend: bool = False) -> Path:
    """Build ``pkg`` the way its tiny backend would, outside wheelstrap: a stand-in for a
    wheel published by someone else.  ``inject`` adds files: appended to the finished zip
    (a crude tampering), or, with ``by_backend``, added by the backend itself while it
    builds, so that the wheel is self-consistent (a careful tampering)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    import zipfile

    dest.mkdir(parents=True, exist_ok=True)
    inject = inject or []
    with tempfile.TemporaryDirectory() as tmp:
        sdist = make_sdist(pkg, Path(tmp))
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        tree = Path(tmp) / f"{pkg.module}-{pkg.version}"
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH),
               "PYTHONPATH": str(Path(__file__).parent)}
        files = json.dumps(inject if by_backend else [])
        out = subprocess.run(
            [sys.executable, "-c", "import json, sys, tinybackend; "
             "tinybackend._INJECT = [tuple(x) for x in json.loads(sys.argv[2])]; "
             "print(tinybackend.build_wheel(sys.argv[1]))", str(dest), files],
            cwd=tree, env=env, check=True, capture_output=True, text=True).stdout.strip()
    wheel = dest / out
    if inject and not by_backend:
        with zipfile.ZipFile(wheel, "a") as zf:
            for path, text in inject:
                zf.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), text)
    return wheel
