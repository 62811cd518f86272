"""sdists: zip sdists end to end, reading pyproject.toml, and [build-system] rules."""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario import EPOCH, Pkg, write_static_index

from wheelstrap.dist.sources import (
    DEFAULT_BACKEND,
    parse_build_system,
    read_pyproject,
    unpack,
)
from wheelstrap.errors import SourceError


@dataclass
class ZipPkg(Pkg):
    """A project whose sdist is a zip archive (allowed by the sdist specification's
    predecessors, and still served by old releases on PyPI)."""

    hostile: tuple[tuple[str, int, bytes], ...] = ()  # (name, st_mode, data)

    @property
    def filename(self) -> str:
        return f"{self.module}-{self.version}.zip"


def make_zip_sdist(pkg: ZipPkg, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / pkg.filename
    top = f"{pkg.module}-{pkg.version}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in sorted(pkg.tree().items()):
            info = zipfile.ZipInfo(f"{top}/{rel}", (2023, 11, 14, 22, 13, 20))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, text)
        for name, mode, data in pkg.hostile:
            info = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
            info.create_system, info.external_attr = 3, mode << 16
            zf.writestr(info, data)
    return path


def test_a_zip_sdist_is_bootstrapped(tmp_path, run_bootstrap):
    pkgs = [ZipPkg("zipped", deps=["plain"]), ZipPkg("plain")]
    folder = tmp_path / "dists"
    for p in pkgs:
        make_zip_sdist(p, folder)
    simple = write_static_index(folder, list(pkgs))
    run = run_bootstrap("zipped", index=simple.as_uri())
    assert run.code == 0, run.stderr
    assert run.wheels == ["plain-1.0-py3-none-any.whl", "zipped-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("name, mode, data", [
    ("zipevil-1.0/../../../escape.txt", stat.S_IFREG | 0o644, b"x"),
    ("/tmp/wheelstrap-zip-evil.txt", stat.S_IFREG | 0o644, b"x"),
    ("zipevil-1.0/link", stat.S_IFLNK | 0o777, b"../../.."),
    ("zipevil-1.0/", stat.S_IFLNK | 0o777, b".."),
])
def test_a_hostile_zip_sdist_is_refused(tmp_path, run_bootstrap, name, mode, data):
    """The zip path, where wheelstrap's own checks are the only defence."""
    pkg = ZipPkg("zipevil", hostile=((name, mode, data),))
    folder = tmp_path / "dists"
    make_zip_sdist(pkg, folder)
    run = run_bootstrap("zipevil", index=write_static_index(folder, [pkg]).as_uri())
    assert run.code == 1
    assert "hostile member" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert run.wheels == []
    assert not Path("/tmp/wheelstrap-zip-evil.txt").exists()
    # nothing of it stays unpacked anywhere in the output directory
    assert not [p for p in run.out.rglob("*") if p.name in ("escape.txt", "link")]


def test_unpack_zip_sdist_finds_its_root_and_epoch(tmp_path):
    pkg = ZipPkg("flat")
    archive = make_zip_sdist(pkg, tmp_path)
    src = unpack(archive, tmp_path / "dest")
    assert src.root == tmp_path / "dest" / "flat-1.0"
    assert (src.root / "flat" / "__init__.py").is_file()
    assert src.source_date_epoch == EPOCH


# -- pyproject.toml ----------------------------------------------------------------------


def write(root: Path, text: str | bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    (root / "pyproject.toml").write_bytes(data)
    return root


@pytest.mark.parametrize("text, needle", [
    ("[build-system]\nrequires = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("[build-system]\nx = " + "9" * 4301 + "\n", "cannot be read"),
    ("[build-system\n", "not valid TOML"),
    (b"[project]\nname = '\xff'\n", "not valid TOML"),
])
def test_unreadable_pyproject_is_a_clean_error(tmp_path, text, needle):
    root = write(tmp_path / "demo-1.0", text)
    with pytest.raises(SourceError) as info:
        read_pyproject(root)
    assert needle in info.value.message
    assert "demo-1.0/pyproject.toml" in info.value.message
    assert info.value.hint


def test_huge_pyproject_is_refused(tmp_path):
    root = write(tmp_path / "demo-1.0", "# " + "x" * (5 << 20) + "\n")
    with pytest.raises(SourceError, match="bigger than"):
        read_pyproject(root)


def test_defaults_when_build_system_is_absent():
    system = parse_build_system({"project": {"name": "x"}}, "x.tar.gz")
    assert [str(r) for r in system.requires] == ["setuptools>=40.8.0"]
    assert system.backend == DEFAULT_BACKEND and system.backend_path is None


def test_a_good_build_system():
    system = parse_build_system({"build-system": {
        "requires": ["hatchling>=1"], "build-backend": "hatchling.build",
        "backend-path": [".", "src", "a/../b"]}}, "x.tar.gz")
    assert system.backend == "hatchling.build"
    assert system.backend_path == (".", "src", "a/../b")


@pytest.mark.parametrize("table, needle", [
    ([1, 2], "is a list, not a table"),
    ("setuptools", "is a str, not a table"),
    (3, "is a int, not a table"),
    ({}, "no 'requires' key"),
    ({"build-backend": "x"}, "no 'requires' key"),
    ({"requires": "setuptools"}, "requires is not a list of strings"),
    ({"requires": [1]}, "requires is not a list of strings"),
    ({"requires": ["!!"]}, "bad requirement"),
    ({"requires": ["evil @ https://example.invalid/evil-1.0.tar.gz"]}, "direct URL"),
    ({"requires": [], "build-backend": 3}, "is not an object reference"),
    ({"requires": [], "build-backend": ""}, "is not an object reference"),
    ({"requires": [], "build-backend": "os; import os"}, "is not an object reference"),
    ({"requires": [], "backend-path": "src"}, "backend-path is not a list of strings"),
    ({"requires": [], "backend-path": [1]}, "backend-path is not a list of strings"),
    ({"requires": [], "backend-path": ["/"]}, "not a relative path inside"),
    ({"requires": [], "backend-path": [".."]}, "not a relative path inside"),
    ({"requires": [], "backend-path": ["src/../.."]}, "not a relative path inside"),
    ({"requires": [], "backend-path": ["/usr/lib/python3/dist-packages"]},
     "not a relative path inside"),
    ({"requires": [], "backend-path": [""]}, "not a relative path inside"),
])
def test_bad_build_system_is_refused_naming_the_field(table, needle):
    with pytest.raises(SourceError) as info:
        parse_build_system({"build-system": table}, "demo-1.0.tar.gz")
    assert needle in info.value.message, info.value.message
    assert info.value.message.startswith("demo-1.0.tar.gz: [build-system]")
    assert info.value.hint


def test_a_tar_sdist_whose_top_folder_is_a_link_to_its_parent_is_refused(tmp_path,
                                                                         run_bootstrap):
    """Issue 14: ``demo-1.0/`` -> ``..`` passed the old checks and the tarfile filter."""
    import io
    import tarfile

    pkg = Pkg("toplink")
    folder = tmp_path / "dists"
    folder.mkdir()
    with tarfile.open(folder / pkg.filename, "w:gz") as tar:
        link = tarfile.TarInfo("toplink-1.0/")
        link.type, link.linkname = tarfile.SYMTYPE, ".."
        tar.addfile(link)
        for rel, text in sorted(pkg.tree().items()):
            data = text.encode()
            info = tarfile.TarInfo(f"toplink-1.0/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    run = run_bootstrap("toplink", index=write_static_index(folder, [pkg]).as_uri())
    assert run.code == 1
    assert "hostile member: 'toplink-1.0/PKG-INFO' (placed below the symlink 'toplink-1.0')" \
        in run.stderr, run.stderr
    assert not (run.out / ".wheelstrap" / "pyproject.toml").exists()
    assert not [p for p in run.out.rglob("pyproject.toml")]
