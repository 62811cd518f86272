"""Stage-0 packing: layouts, metadata, entry points, purity."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from wheelstrap.dist.srcpack import NotPure, PackPlan, inspect, pack
from wheelstrap.errors import SourceError


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def arcs(plan: PackPlan | NotPure) -> list[str]:
    assert isinstance(plan, PackPlan), plan
    return [a for a, _ in plan.files]


@pytest.mark.parametrize("files, expected", [
    # setuptools, src layout through packages.find
    ({"pyproject.toml": '[project]\nname = "a"\nversion = "1"\n'
                        '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
      "src/a/__init__.py": "", "src/a/sub/m.py": "", "tests/test_a.py": ""},
     ["a/__init__.py", "a/sub/m.py"]),
    # setup.cfg with package_dir and find:
    ({"setup.cfg": "[options]\npackages = find:\npackage_dir =\n    =lib\n"
                   "[options.packages.find]\nwhere = lib\n",
      "lib/b/__init__.py": "", "setup.py": "from setuptools import setup\nsetup()\n"},
     ["b/__init__.py"]),
    # flit module name differing from the project name
    ({"pyproject.toml": '[build-system]\nbuild-backend = "flit_core.buildapi"\n'
                        '[project]\nname = "c-dist"\nversion = "1"\n'
                        '[tool.flit.module]\nname = "cmod"\n', "cmod.py": ""},
     ["cmod.py"]),
    # hatch packages under src
    ({"pyproject.toml": '[project]\nname = "d"\nversion = "1"\n'
                        '[tool.hatch.build.targets.wheel]\npackages = ["src/d"]\n',
      "src/d/__init__.py": "", "src/d/data.json": "{}"},
     ["d/__init__.py", "d/data.json"]),
    # poetry include/from
    ({"pyproject.toml": '[tool.poetry]\nname = "e"\nversion = "1"\n'
                        'packages = [{include = "e", from = "src"}]\n',
      "src/e/__init__.py": ""},
     ["e/__init__.py"]),
    # pdm package-dir
    ({"pyproject.toml": '[project]\nname = "f"\nversion = "1"\n'
                        '[tool.pdm.build]\npackage-dir = "src"\n', "src/f/__init__.py": ""},
     ["f/__init__.py"]),
    # namespace package with no __init__ anywhere, named by egg-info/top_level.txt
    ({"PKG-INFO": "Metadata-Version: 2.1\nName: jaraco.g\nVersion: 1\n",
      "jaraco/g/core.py": "", "jaraco.g.egg-info/top_level.txt": "jaraco\n"},
     ["jaraco/g/core.py"]),
    # a flat sdist: the root is the package; the import path comes from the name
    ({"pyproject.toml": "[build-system]\nrequires = ['h.build']\nbuild-backend = 'h.build'\n",
      "PKG-INFO": "Metadata-Version: 2.1\nName: h.build\nVersion: 1\n",
      "__init__.py": "", "backend.py": "", "README.md": "x"},
     ["h/build/__init__.py", "h/build/backend.py"]),
])
def test_layouts(tmp_path, files, expected):
    root = tree(tmp_path / "src-tree", files)
    assert arcs(inspect(root, "x", "1")) == expected


def test_metadata_and_entry_points_from_every_source(tmp_path):
    root = tree(tmp_path / "t", {
        "pyproject.toml": '[project]\nname = "ep"\nversion = "2.0"\nrequires-python = ">=3.8"\n'
                          'dependencies = ["dep>=1"]\n'
                          '[project.optional-dependencies]\n'
                          'fast = ["speed; os_name == \'posix\'"]\n'
                          '[project.scripts]\nep = "ep:main"\n'
                          '[project.entry-points."ep.plugins"]\none = "ep.one"\n',
        "ep/__init__.py": "", "setup.cfg": "[options.entry_points]\ngroup.x =\n  y = ep:y\n"})
    plan = inspect(root, "ep", "2.0")
    assert isinstance(plan, PackPlan)
    assert plan.requires_dist == ("dep>=1",
                                  'speed; (os_name == "posix") and extra == "fast"')
    wheel = pack(plan, tmp_path / "out", 1700000000)
    again = pack(plan, tmp_path / "out2", 1700000000)
    assert wheel.read_bytes() == again.read_bytes()  # deterministic
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read("ep-2.0.dist-info/METADATA").decode()
        eps = zf.read("ep-2.0.dist-info/entry_points.txt").decode()
        record = zf.read("ep-2.0.dist-info/RECORD").decode()
    assert "Requires-Python: >=3.8" in meta and "Requires-Dist: dep>=1" in meta
    assert "[console_scripts]\nep = ep:main" in eps
    assert "[ep.plugins]\none = ep.one" in eps and "[group.x]\ny = ep:y" in eps
    assert "ep/__init__.py,sha256=" in record


def test_dynamic_dependencies_come_from_pkg_info_or_requires_txt(tmp_path):
    root = tree(tmp_path / "t", {
        "pyproject.toml": '[project]\nname = "dyn"\ndynamic = ["dependencies", "version"]\n',
        "dyn.egg-info/requires.txt": "base\n\n[extra1]\nopt\n\n[:python_version < '3.9']\nold\n",
        "dyn/__init__.py": ""})
    plan = inspect(root, "dyn", "1")
    assert isinstance(plan, PackPlan)
    assert plan.requires_dist == ("base", 'opt; extra == "extra1"',
                                  "old; (python_version < '3.9')")


@pytest.mark.parametrize("files, reason", [
    ({"pyproject.toml": '[project]\nname = "n"\nversion = "1"\n', "n/__init__.py": "",
      "n/_speed.c": "int x;"}, "native sources (n/_speed.c)"),
    ({"setup.py": "from setuptools import Extension, setup\n"
                  "setup(ext_modules=[Extension('n._s', ['s.c'])])\n", "n/__init__.py": ""},
     "declares extension modules"),
    ({"pyproject.toml": '[build-system]\nbuild-backend = "maturin"\n', "n/__init__.py": ""},
     "compiles native code"),
    ({"pyproject.toml": '[project]\nname = "n"\nversion = "1"\n', "README": "x"},
     "no importable Python package"),
])
def test_not_pure(tmp_path, files, reason):
    plan = inspect(tree(tmp_path / "t", files), "n", "1")
    assert isinstance(plan, NotPure)
    assert any(reason in r for r in plan.reasons), plan.reasons


def test_a_stray_c_file_outside_the_package_does_not_count(tmp_path):
    root = tree(tmp_path / "t", {"pyproject.toml": '[project]\nname = "s"\nversion = "1"\n',
                                 "s/__init__.py": "", "launcher.c": "int main;"})
    assert arcs(inspect(root, "s", "1")) == ["s/__init__.py"]


# -- hostile and malformed layouts -------------------------------------------------------

PKG = {"demo/__init__.py": "", "src/demo/__init__.py": ""}


@pytest.fixture
def outside(tmp_path):
    """A package beside the source tree that must never be packed."""
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "__init__.py").write_text("secret = 1\n")
    return folder


@pytest.mark.parametrize("pyproject", [
    '[tool.hatch.build.targets.wheel]\npackages = ["../x"]\n',
    '[tool.hatch.build.targets.wheel]\nonly-include = ["{outside}"]\n',
    '[tool.hatch.build.targets.wheel]\nonly-include = ["src/../../x"]\n',
    '[tool.poetry]\npackages = [{{include = "x", from = ".."}}]\n',
    '[tool.poetry]\npackages = [{{include = "../x"}}]\n',
    '[tool.pdm.build]\npackage-dir = ".."\n',
    '[tool.pdm.build]\nincludes = ["../x"]\n',
    '[tool.setuptools]\npackages = ["x"]\npackage-dir = {{"" = ".."}}\n',
    '[tool.setuptools]\npackages = ["x"]\npackage-dir = {{x = "{outside}"}}\n',
    '[tool.setuptools.packages.find]\nwhere = [".."]\n',
    '[tool.setuptools.packages.find]\nwhere = ["/"]\n',
])
def test_layouts_never_take_files_from_outside_the_tree(tmp_path, outside, pyproject):
    root = tree(tmp_path / "t", {**PKG, "pyproject.toml": pyproject.format(outside=outside)})
    with pytest.raises(SourceError) as info:
        inspect(root, "demo", "1")
    assert "points outside the source tree" in info.value.message
    assert "stage-0 packing refused" in info.value.message
    assert info.value.hint


def test_pdm_includes_as_a_string_does_not_walk_the_filesystem(tmp_path):
    root = tree(tmp_path / "t", {**PKG, "pyproject.toml": '[tool.pdm.build]\nincludes = "/"\n'})
    plan = inspect(root, "demo", "1")
    assert isinstance(plan, NotPure)
    assert "[tool.pdm.build].includes is not a list of strings" in plan.reasons[0]


def test_links_leading_out_are_refused(tmp_path, outside):
    root = tree(tmp_path / "t", {"pyproject.toml": '[project]\nname = "demo"\n',
                                 "demo/__init__.py": ""})
    (root / "demo" / "stolen.py").symlink_to(outside / "__init__.py")
    with pytest.raises(SourceError, match="link leading out"):
        inspect(root, "demo", "1")
    (root / "demo" / "stolen.py").unlink()
    (root / "evil").symlink_to(outside)  # a link to a folder outside is never walked
    assert arcs(inspect(root, "demo", "1")) == ["demo/__init__.py"]


def test_a_link_loop_does_not_hang(tmp_path):
    root = tree(tmp_path / "t", {"pyproject.toml": '[project]\nname = "demo"\n', **PKG})
    (root / "demo" / "loop").symlink_to("..")
    (root / "src" / "demo" / "loop").symlink_to(".")
    assert arcs(inspect(root, "demo", "1")) == ["demo/__init__.py"]


@pytest.mark.parametrize("pyproject, reason", [
    ("project = 3\n", "[project] is not a table"),
    ('[project]\nname = "demo"\ndependencies = "a"\n', "dependencies is not a list"),
    ('[project]\nname = "demo"\ndynamic = 1\n', "dynamic is not a list"),
    ('[project]\nname = "demo"\noptional-dependencies = []\n', "is not a table"),
    ('[project]\nname = "demo"\nscripts = ["a"]\n', "[project.scripts] is not a table"),
    ('[project]\nname = "demo"\nrequires-python = 3\n', "requires-python is not a string"),
    ('[project]\nname = "demo"\nrequires-python = ">=3\\nRequires-Dist: evil"\n',
     "is not a version specifier"),
    ('[project.scripts]\n"x\\ny" = "demo:main"\n', "is not valid"),
    ('[project.entry-points]\n"g]\\n[console_scripts" = {a = "b"}\n', "is not valid"),
    ('[tool.hatch.build.targets.wheel]\npackages = "demo"\n', "packages is not a list"),
    ('[tool.hatch.build.targets.wheel]\npackages = ["src/demo"]\nsources = 3\n',
     "sources is not a table of strings"),
    ("[tool.poetry]\npackages = [1]\n", "holds something other than tables"),
    ('[tool.poetry]\npackages = [{from = "src"}]\n', "without 'include'"),
    ('[tool.setuptools]\npackages = ["../x"]\n', "is not a dotted import name"),
    ('[tool.setuptools]\npackages = [""]\n', "is not a dotted import name"),
    ('[tool.setuptools]\npy-modules = ["../x"]\n', "is not an import name"),
    ('[tool.setuptools.packages.find]\nnamespaces = "no"\n', "namespaces is not a boolean"),
    ('[tool.flit.module]\nname = ".."\n', "is not a dotted import name"),
    ('[tool.flit.module]\nname = 3\n', "name is not a string"),
    ('[tool.hatch.build.targets.wheel]\nonly-include = ["demo"]\n'
     'sources = {"demo" = "../up"}\n', "cannot be placed in a wheel"),
])
def test_malformed_configuration_is_not_pure_with_a_reason(tmp_path, pyproject, reason):
    root = tree(tmp_path / "t", {**PKG, "pyproject.toml": pyproject})
    plan = inspect(root, "demo", "1")
    assert isinstance(plan, NotPure), plan
    assert any(reason in r for r in plan.reasons), plan.reasons


@pytest.mark.parametrize("files, reason", [
    ({"demo.egg-info/requires.txt": b"a\n\xff\n"}, "requires.txt is not UTF-8"),
    ({"demo.egg-info/entry_points.txt": b"no header\n"}, "entry_points.txt cannot be read"),
    ({"demo.egg-info/entry_points.txt": b"[a]\nx = 1\n[a]\n"}, "entry_points.txt cannot be"),
    ({"demo.egg-info/requires.txt": b"[x]\n!!bad\n"}, "its dependencies cannot be read"),
])
def test_unreadable_metadata_files_are_not_pure(tmp_path, files, reason):
    root = tmp_path / "t"
    tree(root, {**PKG, "pyproject.toml": "[project]\nname = 'demo'\ndynamic = ['dependencies']\n"})
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    plan = inspect(root, "demo", "1")
    assert isinstance(plan, NotPure), plan
    assert any(reason in r for r in plan.reasons), plan.reasons


def test_odd_file_names_are_recorded_as_csv(tmp_path):
    root = tree(tmp_path / "t", {"pyproject.toml": '[project]\nname = "demo"\n',
                                 "demo/__init__.py": "", 'demo/a,"b".txt': "x"})
    plan = inspect(root, "demo", "1")
    assert isinstance(plan, PackPlan)
    wheel = pack(plan, tmp_path / "out", 2**40)  # a time past what zip can hold: clamped
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read("demo-1.dist-info/RECORD").decode()
        assert zf.getinfo("demo/__init__.py").date_time[0] == 2107
    assert '"demo/a,""b"".txt",sha256=' in record


def test_a_configured_name_too_long_for_the_filesystem_is_not_pure(tmp_path):
    root = tree(tmp_path / "t", {**PKG, "pyproject.toml":
                                 f'[tool.hatch.build.targets.wheel]\npackages = ["{"a" * 300}"]\n'})
    plan = inspect(root, "demo", "1")
    assert isinstance(plan, NotPure)
    assert "its files cannot be read" in plan.reasons[0]


def test_broken_links_and_special_files_are_not_packed(tmp_path):
    root = tree(tmp_path / "t", {"pyproject.toml": '[project]\nname = "demo"\n',
                                 "demo/__init__.py": ""})
    (root / "demo" / "gone.py").symlink_to("nowhere.py")
    os.mkfifo(root / "demo" / "pipe")
    plan = inspect(root, "demo", "1")
    assert arcs(plan) == ["demo/__init__.py"]
    assert isinstance(plan, PackPlan)
    pack(plan, tmp_path / "out", 0)
