"""The settings file: validation (every problem at once), layering, digests, requirement
edits."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wheelstrap.config.settings import (
    EMPTY,
    PackageSettings,
    RequirementEdits,
    diff_requirements,
    edit_requirements,
    parse_settings,
    read_settings,
)
from wheelstrap.errors import UserInputError

PATCH = b"""\
--- a/pyproject.toml
+++ b/pyproject.toml
@@ -1,2 +1,2 @@
 [build-system]
-requires = ["python-sbom"]
+requires = []
"""
SHA = "a" * 64


def reqs(*texts: str) -> tuple[Requirement, ...]:
    return tuple(Requirement(t) for t in texts)


def strs(rs: tuple[Requirement, ...]) -> list[str]:
    return [str(r) for r in rs]


def write(tmp_path: Path, text: str, patches: dict[str, bytes] | None = None) -> Path:
    for name, data in (patches or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(doc: dict[str, Any], tmp_path: Path) -> str:
    with pytest.raises(UserInputError) as info:
        parse_settings(doc, tmp_path)
    return info.value.message


ISSUE_EXAMPLE = """
[packages.platformdirs]
build-requires.remove = ["python-sbom"]
build-requires.add = ["hatch-vcs>=0.5"]
build-requires.replace = { "setuptools" = "setuptools<81" }
patches = ["patches/platformdirs-no-sbom.patch"]

[packages."setuptools-scm==10.0.2"]
patches = ["patches/scm-backend-path.patch"]
env = { SETUPTOOLS_SCM_PRETEND_VERSION = "10.0.2" }
requires.remove = ["typing-extensions"]

[packages.numpy]
config-settings = { "setup-args" = ["-Dallow-noblas=true"] }
"""


def test_the_issue_example_reads(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE, {"patches/platformdirs-no-sbom.patch": PATCH,
                                           "patches/scm-backend-path.patch": PATCH})
    settings = read_settings(path)
    pd = settings.for_package(canonicalize_name("platformdirs"), "4.3.0")
    assert [p.name for p in pd.patches] == ["patches/platformdirs-no-sbom.patch"]
    assert pd.patches[0].files == ("pyproject.toml",)
    assert strs(pd.edit_build_requires(reqs("hatchling", "python-sbom>=1", "setuptools>=61"))) \
        == ["hatchling", "setuptools<81", "hatch-vcs>=0.5"]
    scm = settings.for_package(canonicalize_name("setuptools_scm"), "10.0.2")
    assert scm.environment() == {"SETUPTOOLS_SCM_PRETEND_VERSION": "10.0.2"}
    assert strs(scm.edit_requires(reqs("packaging", "typing_extensions; python_version<'3.10'"))) \
        == ["packaging"]
    assert settings.for_package(canonicalize_name("setuptools-scm"), "10.0.1") == EMPTY
    numpy = settings.for_package(canonicalize_name("numpy"), "2.1.0")
    assert numpy.config_settings_dict() == {"setup-args": ["-Dallow-noblas=true"]}
    assert settings.for_package(canonicalize_name("requests"), "2.0") == EMPTY
    assert settings.for_package(canonicalize_name("requests"), "2.0").is_empty


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "bad.patch").write_bytes(b"--- /etc/passwd\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
    doc = {
        "plugins": [],
        "packages": {
            "foo": {
                "unknown": 1,
                "build-requires": {"remove": ["foo>=1"], "add": ["not a req!"], "drop": []},
                "requires": {"replace": {"bar": 3}, "add": "baz"},
                "patches": ["missing.patch", "bad.patch", 7],
                "env": {"PATH": "/x", "1BAD": "x", "N": 1},
                "config-settings": {"k": 1},
                "source": {"url": "ftp://x/y.tar.gz", "sha256": "nothex"},
                "plugin": "not a spec",
            },
            "bar[extra]": {},
            "baz!!": {},
            "qux": "not a table",
            "pre": {"prebuilt": {}, "patches": []},
            "pre2": {"prebuilt": {"sha256": ["zz"]}},
            "src": {"source": {"url": "https://x/pkg.whl"}},
        },
    }
    message = problems(doc, tmp_path)
    expected = [
        "plugins: unknown top-level key",
        "packages.foo.unknown: unknown key",
        "packages.foo.build-requires.drop: unknown key",
        "packages.foo.build-requires.remove[0]: 'foo>=1' is not a project name",
        "packages.foo.build-requires.add[0]: 'not a req!' is not a valid PEP 508",
        "packages.foo.requires.add: must be an array",
        "packages.foo.requires.replace.bar: must be a requirement string, not an integer",
        "packages.foo.patches[0]: cannot read missing.patch",
        "packages.foo.patches[1]: the patch bad.patch is refused: it names the absolute path",
        "packages.foo.patches[2]: must be a file name",
        "packages.foo.env.PATH: is set by wheelstrap",
        "packages.foo.env.1BAD: is not a valid environment variable name",
        "packages.foo.env.N: must be a string (quote numbers), not an integer",
        "packages.foo.config-settings.k: must be a string or an array of strings",
        "packages.foo.source.url: 'ftp://x/y.tar.gz' is not an https://",
        "packages.foo.source.sha256: must be a sha256 digest",
        "packages.foo.plugin: must be \"module:Class\"",
        'packages."bar[extra]": \'bar[extra]\' may hold only a project name',
        'packages."baz!!": \'baz!!\' is not a project name',
        "packages.qux: must be a table, not a string",
        "packages.pre.prebuilt.sha256: is required",
        "packages.pre.prebuilt: a prebuilt package is not built, so patches cannot be set",
        "packages.pre2.prebuilt.sha256: must be a sha256 digest",
        "packages.src.source.url: 'https://x/pkg.whl' does not name an sdist archive",
        "packages.src.source.sha256: is required",
    ]
    for line in expected:
        assert line in message, line
    assert f"has {len(expected)} problems" in message


def test_duplicate_tables_are_refused(tmp_path: Path) -> None:
    message = problems({"packages": {"Foo_Bar": {}, "foo-bar": {}}}, tmp_path)
    assert "packages.foo-bar: repeats the table packages.Foo_Bar" in message


def test_packages_must_be_a_table(tmp_path: Path) -> None:
    assert "packages: must be a table of tables" in problems({"packages": []}, tmp_path)


def test_a_patch_outside_the_tree_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "up.patch").write_bytes(b"--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n")
    message = problems({"packages": {"foo": {"patches": ["up.patch"]}}}, tmp_path)
    assert "contains '..'" in message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="cannot be read"):
        read_settings(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n")
    with pytest.raises(UserInputError, match="not UTF-8"):
        read_settings(bad)
    bad.write_text("[packages.foo\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="not valid TOML"):
        read_settings(bad)
    bad.write_text("[packages.foo]\nenv = { A = 1 }\n", encoding="utf-8")
    with pytest.raises(UserInputError) as info:
        read_settings(bad)
    assert str(bad) in info.value.message and info.value.hint


def test_patch_paths_are_relative_to_the_settings_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    path = write(folder, '[packages.foo]\npatches = ["p/x.patch"]\n', {"p/x.patch": PATCH})
    monkeypatch.chdir(tmp_path)
    settings = read_settings(Path("conf/settings.toml"))
    assert settings.for_package(canonicalize_name("foo"), "1").patches[0].name == "p/x.patch"
    assert path.is_file()


def test_layering(tmp_path: Path) -> None:
    doc = {"packages": {
        "foo>=2": {"env": {"A": "2", "B": "2"}, "build-requires": {"add": ["two"]},
                   "patches": ["b.patch"], "config-settings": {"k": "v2"}},
        "foo": {"env": {"A": "1", "C": "1"}, "build-requires": {"add": ["one"]},
                "patches": ["a.patch"], "config-settings": {"k": "v1", "j": ["x", "y"]}},
        "foo<3": {"env": {"B": "3"}, "build-requires": {"remove": ["one"]}},
        "foo==2.5": {"source": {"url": "https://h/foo-2.5.tar.gz", "sha256": SHA}},
        "bar": {"env": {"A": "x"}},
    }}
    for name in ("a.patch", "b.patch"):
        (tmp_path / name).write_bytes(PATCH.replace(b"[]", name.encode()))
    settings = parse_settings(doc, tmp_path)
    foo2 = settings.for_package(canonicalize_name("foo"), "2.5")
    # name-only table first, then the specifier tables in file order
    assert foo2.tables == ("packages.foo", 'packages."foo>=2"', 'packages."foo<3"',
                           'packages."foo==2.5"')
    assert foo2.environment() == {"A": "2", "B": "3", "C": "1"}
    assert foo2.config_settings_dict() == {"k": "v2", "j": ["x", "y"]}
    assert [p.name for p in foo2.patches] == ["a.patch", "b.patch"]
    assert strs(foo2.edit_build_requires(reqs("base"))) == ["base", "two"]
    assert foo2.source is not None and foo2.source.sha256 == SHA
    foo1 = settings.for_package(canonicalize_name("foo"), "1.0")
    assert foo1.tables == ("packages.foo", 'packages."foo<3"')
    assert strs(foo1.edit_build_requires(reqs("base"))) == ["base"]
    foo3 = settings.for_package(canonicalize_name("foo"), "3.0rc1")  # pre-releases match
    assert foo3.tables == ("packages.foo", 'packages."foo>=2"')
    odd = settings.for_package(canonicalize_name("foo"), "not-a-version")
    assert odd.tables == ("packages.foo",)
    assert settings.unused([(canonicalize_name("foo"), "1.0")]) == [
        'packages."foo>=2"', 'packages."foo==2.5"', "packages.bar"]
    assert settings.unused([]) == [t.label for t in settings.tables]


def test_settings_are_picklable(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_bytes(PATCH)
    settings = parse_settings({"packages": {
        "foo": {"patches": ["a.patch"], "requires": {"replace": {"x": "x<2"}}},
        "foo==1": {"prebuilt": {"sha256": SHA.upper()}}}}, tmp_path)
    package = settings.for_package(canonicalize_name("foo"), "2")
    copy = pickle.loads(pickle.dumps(package))
    assert copy == package and copy.patches[0].data == PATCH
    assert copy.digest() == package.digest()
    # a prebuilt layer drops what only a build uses, keeps runtime edits
    prebuilt = settings.for_package(canonicalize_name("foo"), "1.0")
    assert prebuilt.prebuilt is not None and prebuilt.prebuilt.sha256 == (SHA,)
    assert prebuilt.patches == () and prebuilt.requires == package.requires


def test_digest_is_stable_and_covers_patch_contents(tmp_path: Path) -> None:
    assert EMPTY.digest() == PackageSettings().digest()
    doc = {"packages": {"foo": {"patches": ["a.patch"], "env": {"A": "1"}}}}
    (tmp_path / "a.patch").write_bytes(PATCH)
    first = parse_settings(doc, tmp_path).for_package(canonicalize_name("foo"), "1")
    again = parse_settings(doc, tmp_path).for_package(canonicalize_name("foo"), "1")
    assert first.digest() == again.digest() != EMPTY.digest()
    (tmp_path / "a.patch").write_bytes(PATCH.replace(b"requires = []", b"requires = [ ]"))
    changed = parse_settings(doc, tmp_path).for_package(canonicalize_name("foo"), "1")
    assert changed.digest() != first.digest()
    # the patch's name and the table's key do not matter, only what is applied
    (tmp_path / "b.patch").write_bytes(PATCH)
    renamed = parse_settings({"packages": {"foo>=0": {"patches": ["b.patch"],
                                                      "env": {"A": "1"}}}}, tmp_path)
    assert renamed.for_package(canonicalize_name("foo"), "1").digest() == first.digest()
    for other in ({"env": {"A": "2"}}, {"config-settings": {"A": "1"}},
                  {"requires": {"remove": ["x"]}}, {"build-requires": {"remove": ["x"]}},
                  {"source": {"url": "https://h/foo.tar.gz", "sha256": SHA}},
                  {"prebuilt": {"sha256": SHA}}, {"plugin": "mod:Cls"}):
        value = parse_settings({"packages": {"foo==1": other}}, tmp_path)
        assert value.for_package(canonicalize_name("foo"), "1").digest() != EMPTY.digest()


def test_empty_digest_does_not_change_by_accident() -> None:
    # The empty settings' digest is part of every content address: a change here rebuilds
    # every package of every cache.  Update the constant only on purpose.
    assert EMPTY.digest() == EMPTY_DIGEST


EMPTY_DIGEST = "01e40db31c16222939a63567e226c45144b403e0578794fe3dd26035ab547a80"


def test_to_json_records_what_provenance_needs(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_bytes(PATCH)
    settings = parse_settings({"packages": {"foo==1": {
        "patches": ["a.patch"], "env": {"A": "1"}, "config-settings": {"k": ["a"]},
        "build-requires": {"remove": ["X_y"]}, "plugin": "mod:Cls",
        "source": {"url": "https://h/foo-1.tar.gz", "sha256": SHA}}}}, tmp_path)
    data = settings.for_package(canonicalize_name("foo"), "1").to_json()
    assert data["schema"] == "wheelstrap-package-settings" and data["version"] == 1
    assert data["patches"] == [{"name": "a.patch", "sha256": data["patches"][0]["sha256"],
                                "files": ["pyproject.toml"]}]
    assert data["env"] == {"A": "1"} and data["config-settings"] == {"k": ["a"]}
    assert data["build-requires"] == [{"remove": ["x-y"], "replace": {}, "add": []}]
    assert data["source"] == {"url": "https://h/foo-1.tar.gz", "sha256": SHA}
    assert data["plugin"] == "mod:Cls" and data["tables"] == ['packages."foo==1"']
    assert len(data["digest"]) == 64


def test_requirement_edits() -> None:
    base = reqs("Foo_Bar[x]>=1; python_version<'3.12'", "baz", "tomli; python_version<'3.11'")
    removed = edit_requirements(base, RequirementEdits(remove=(canonicalize_name("foo.bar"),)))
    assert strs(removed) == ["baz", 'tomli; python_version < "3.11"']
    swapped = edit_requirements(base, RequirementEdits(replace=(
        (canonicalize_name("tomli"), Requirement("tomli>=2")),
        (canonicalize_name("baz"), Requirement("qux; sys_platform == 'linux'")))))
    # a replacement without a marker keeps the original's marker; one with a marker wins
    assert strs(swapped)[1:] == ['qux; sys_platform == "linux"',
                                 'tomli>=2; python_version < "3.11"']
    added = edit_requirements(base, [RequirementEdits(add=(Requirement("new"),)),
                                     RequirementEdits(remove=(canonicalize_name("new"),),
                                                      add=(Requirement("baz"),))])
    assert strs(added) == strs(base)  # a later layer removes what an earlier one added
    assert edit_requirements(base, ()) == base
    diff = diff_requirements(base, swapped)
    assert strs(diff.removed) == ["baz", 'tomli; python_version < "3.11"']
    assert strs(diff.added) == ['qux; sys_platform == "linux"',
                                'tomli>=2; python_version < "3.11"']


def test_the_settings_command_checks_a_file_and_shows_effective_settings(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    path = write(tmp_path, ISSUE_EXAMPLE, {"patches/platformdirs-no-sbom.patch": PATCH,
                                           "patches/scm-backend-path.patch": PATCH})
    result = CliRunner().invoke(main, ["settings", str(path), "setuptools_scm==10.0.2"])
    assert result.exit_code == 0, result.output
    assert "3 tables" in result.stdout and "no problems found" in result.stdout
    assert '"SETUPTOOLS_SCM_PRETEND_VERSION": "10.0.2"' in result.stdout
    assert '"name": "setuptools-scm"' in result.stdout
    bad = write(tmp_path / "bad", "[packages.foo]\nenv = 1\npatches = ['gone.patch']\n")
    result = CliRunner().invoke(main, ["settings", str(bad)])
    assert result.exit_code == 1
    assert "packages.foo.env: must be a table" in result.stderr
    assert "packages.foo.patches[0]: cannot read gone.patch" in result.stderr
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["settings", str(path), "numpy"])
    assert result.exit_code == 1 and "is not NAME==VERSION" in result.stderr


def test_prebuilt_wheels_are_chosen_by_pinned_hash_only() -> None:
    from wheelstrap.config.settings import Prebuilt, SourceOverride, check_prebuilt, prebuilt_wheels
    from wheelstrap.errors import SourceError
    from wheelstrap.index.simple import ProjectFile

    other = "b" * 64

    def f(name: str, sha: str | None, yanked: bool = False) -> ProjectFile:
        return ProjectFile(name, f"https://h/{name}", sha, None, yanked)

    files = [f("rusty-1.0.tar.gz", SHA), f("rusty-1.0-cp311-abi3-linux_x86_64.whl", other),
             f("rusty-1.0-py3-none-any.whl", None), f("Rusty-1.0-cp39-abi3-any.whl", SHA),
             f("rusty-1.1-py3-none-any.whl", SHA), f("rusty-1.0-cp38-none-any.whl", SHA, True),
             f("not a wheel.whl", SHA)]
    chosen = prebuilt_wheels(files, canonicalize_name("rusty"), "1.0", Prebuilt((SHA,)))
    assert [c.filename for c in chosen] == ["Rusty-1.0-cp39-abi3-any.whl",
                                            "rusty-1.0-py3-none-any.whl"]
    assert prebuilt_wheels(files, canonicalize_name("rusty"), "bad!", Prebuilt((SHA,))) == []
    check_prebuilt("x.whl", SHA.upper(), Prebuilt((SHA,)))
    with pytest.raises(SourceError, match="does not pin"):
        check_prebuilt("x.whl", other, Prebuilt((SHA,)))
    assert SourceOverride("https://h/a/pkg%2B1-1.0.tar.gz?x=1", SHA).filename \
        == "pkg+1-1.0.tar.gz"


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    import re

    docs = (Path(__file__).parent.parent / "docs" / "settings.md").read_text(encoding="utf-8")
    example = docs.split("## A worked example", 1)[1].split("\n## ", 1)[0]
    toml_text = re.search(r"```toml\n(.*?)```", example, re.S)
    diff_text = re.search(r"```diff\n(.*?)```", example, re.S)
    assert toml_text and diff_text
    patches = re.findall(r'"(patches/[^"]+)"', toml_text.group(1))
    path = write(tmp_path, toml_text.group(1), {p: diff_text.group(1).encode() for p in patches})
    settings = read_settings(path)
    assert len(settings.tables) == 2
    scm = settings.for_package(canonicalize_name("setuptools-scm"), "10.0.2")
    assert scm.patches[0].files == ("pyproject.toml",)
    assert scm.environment() == {"VCS_VERSIONING_PRETEND_VERSION": "10.0.2"}
    # the patch applies to the lines of the real pyproject.toml it was written against
    import shutil

    from wheelstrap.dist.patching import apply_patches

    if shutil.which("patch") is None:
        return
    root = tmp_path / "tree"
    root.mkdir()
    head = "".join(f"line {i}\n" for i in range(1, 13))
    tail = '[tools.uv.sources]\nvcs-versioning= "../vcs-versioning"\n'
    (root / "pyproject.toml").write_text(
        head + 'backend-path = [\n  ".",\n  "./src",\n  "../vcs-versioning/src"\n]\n' + tail,
        encoding="utf-8")
    apply_patches(root, scm.patches, tmp_path / "log", package="setuptools-scm 10.0.2")
    assert (root / "pyproject.toml").read_text() == \
        head + 'backend-path = [\n  ".",\n  "./src",\n]\n' + tail


def test_a_source_override_replaces_one_release(tmp_path: Path) -> None:
    def source(url: str) -> dict[str, Any]:
        return {"source": {"url": url, "sha256": SHA}}

    message = problems({"packages": {
        "foo": source("https://h/foo-1.0.tar.gz"),
        "bar>=1": source("https://h/bar-1.0.tar.gz"),
        "baz==1.*": source("https://h/baz-1.0.tar.gz"),
        "qux==1.0": source("https://h/qux-2.0.tar.gz"),
        "quux==1.0": source("https://h/other-1.0.tar.gz"),
    }}, tmp_path)
    for label in ("packages.foo", 'packages."bar>=1"', 'packages."baz==1.*"'):
        assert f"{label}.source: replaces one release's sdist" in message
    assert "qux-2.0.tar.gz is qux 2.0, not qux==1.0" in message
    assert "other-1.0.tar.gz is other 1.0, not quux==1.0" in message
    fine = parse_settings({"packages": {
        "foo==1.0": source("https://h/foo-1.0.tar.gz"),
        "fork==2": source("https://github.example/fork/archive/abc123.tar.gz")}}, tmp_path)
    assert [t.label for t in fine.tables] == ['packages."foo==1.0"', 'packages."fork==2"']


def test_the_whole_file_has_a_digest(tmp_path: Path) -> None:
    from wheelstrap.config.settings import NO_SETTINGS

    one = parse_settings({"packages": {"foo": {"env": {"A": "1"}}, "bar>=1": {}}}, tmp_path)
    same = parse_settings({"packages": {"Foo": {"env": {"A": "1"}}, "bar >= 1": {}}}, tmp_path)
    other = parse_settings({"packages": {"foo": {"env": {"A": "2"}}, "bar>=1": {}}}, tmp_path)
    assert one.digest() == same.digest() != other.digest()
    assert NO_SETTINGS.digest() == parse_settings({}, tmp_path).digest() != one.digest()


def test_a_source_override_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    import hashlib

    from wheelstrap.config.settings import SourceOverride, fetch_source
    from wheelstrap.errors import SourceError
    from wheelstrap.index.client import IndexClient

    archive = tmp_path / "fork" / "foo-1.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"not really a tarball")
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    client = IndexClient()
    out = tmp_path / "sdists"
    fetched = fetch_source(SourceOverride(archive.as_uri(), good), out, client.download)
    assert fetched == out / "foo-1.0.tar.gz" and fetched.read_bytes() == archive.read_bytes()
    fetched.unlink()
    with pytest.raises(SourceError) as info:
        fetch_source(SourceOverride(archive.as_uri(), SHA), out, client.download)
    assert "does not have the pinned sha256" in info.value.message and good in info.value.message
    assert info.value.hint and not (out / "foo-1.0.tar.gz").exists()
