"""Plugins: loading from an entry point of an installed distribution and from the settings
file, hook calls, error translation, digests."""

from __future__ import annotations

import pickle
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wheelstrap.config import hooks
from wheelstrap.config.hooks import (
    ENTRY_POINT_GROUP,
    NO_PLUGINS,
    BuildHooks,
    HookContext,
    PackageHooks,
    hooks_digest,
    load_plugins,
)
from wheelstrap.config.settings import NO_SETTINGS, parse_settings
from wheelstrap.errors import BuildFailure, InternalError, SourceError, UserInputError

FOO = canonicalize_name("foo")

PLUGIN = '''
from pathlib import Path
from wheelstrap import BuildHooks

class FooHooks(BuildHooks):
    version = "3"

    def prepare_source(self, ctx, root):
        path = root / "setup.cfg"
        path.write_text(path.read_text().replace("broken", "fixed"))
        if ctx.log is not None:
            with open(ctx.log, "a") as fh:
                fh.write(f"prepared {ctx.name} {ctx.version}\\n")

    def edit_build_requires(self, ctx, reqs, *, dynamic):
        return [*reqs, "cython" if dynamic else "setuptools"]

    def edit_requires(self, ctx, reqs):
        return [r for r in reqs if r.name != "dropme"]

    def extra_env(self, ctx):
        return {"FROM_PLUGIN": "1", "SHARED": "plugin"}

    def extra_config_settings(self, ctx):
        return {"plugin": ["a", "b"], "shared": "plugin"}

class Broken(BuildHooks):
    def prepare_source(self, ctx, root):
        raise RuntimeError("cargo vendor failed")

    def edit_build_requires(self, ctx, reqs, *, dynamic):
        return "not a list"

    def edit_requires(self, ctx, reqs):
        return ["bad req !"]

    def extra_env(self, ctx):
        return {"SOURCE_DATE_EPOCH": "0"}

    def extra_config_settings(self, ctx):
        return {"k": 1}

    def build_wheel(self, ctx, root, outdir, env):
        return "/etc/passwd"

class Builder(BuildHooks):
    def build_wheel(self, ctx, root, outdir, env):
        wheel = outdir / f"{ctx.name}-{ctx.version}-py3-none-any.whl"
        wheel.write_bytes(b"PK")
        return wheel.name

class Exits(BuildHooks):
    def extra_env(self, ctx):
        raise SystemExit(3)

NOT_HOOKS = object()
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
         ) -> Iterator[tuple[Path, str]]:
    """A folder on sys.path holding a plugin module (named uniquely for the test) and the
    dist-info of the tiny distribution that declares it as an entry point."""
    folder = tmp_path / "site"
    folder.mkdir()
    module = "wsplug_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    (folder / f"{module}.py").write_text(PLUGIN, encoding="utf-8")
    info = folder / "tinyplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyplug\nVersion: 1.0\n")
    (info / "RECORD").write_text("")
    (info / "top_level.txt").write_text(module + "\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nFoo = {module}:FooHooks\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(hooks, "_instances", {})
    yield folder, module


def source_tree(tmp_path: Path) -> Path:
    root = tmp_path / "foo-1.0"
    root.mkdir()
    (root / "setup.cfg").write_text("[metadata]\nname = broken\n")
    return root


def test_a_plugin_from_an_entry_point_rewrites_a_file(site: tuple[Path, str],
                                                      tmp_path: Path) -> None:
    _, module = site
    plugins = load_plugins(NO_SETTINGS)
    ref = plugins.for_package(FOO)
    assert ref is not None
    assert (ref.spec, ref.distribution, ref.dist_version, ref.plugin_version) == \
        (f"{module}:FooHooks", "tinyplug", "1.0", "3")
    assert plugins.for_package(canonicalize_name("bar")) is None
    package = plugins.hooks(FOO, "1.0")
    root, log = source_tree(tmp_path), tmp_path / "build.log"
    package.prepare_source(root, log)
    assert (root / "setup.cfg").read_text() == "[metadata]\nname = fixed\n"
    assert "prepared foo 1.0" in log.read_text()
    base = (Requirement("wheel"),)
    assert [str(r) for r in package.build_requires(base, dynamic=False)] == ["wheel", "setuptools"]
    assert [str(r) for r in package.build_requires(base, dynamic=True)] == ["wheel", "cython"]
    assert [str(r) for r in package.requires([Requirement("dropme"), Requirement("keep")])] \
        == ["keep"]
    assert package.environment() == {"FROM_PLUGIN": "1", "SHARED": "plugin"}
    assert package.config_settings() == {"plugin": ["a", "b"], "shared": "plugin"}
    assert package.build_wheel(root, tmp_path / "out", object(), log) is None  # type: ignore[arg-type]
    data = package.to_json()
    assert data["plugin"]["distribution"] == "tinyplug" and data["plugin"]["sha256"] == ref.sha256


def test_settings_come_first_and_win(site: tuple[Path, str], tmp_path: Path) -> None:
    settings = parse_settings({"packages": {"foo": {
        "env": {"SHARED": "settings"}, "config-settings": {"shared": "settings"},
        "build-requires": {"remove": ["wheel"]}}}}, tmp_path)
    package = load_plugins(settings).hooks(FOO, "1.0", settings.for_package(FOO, "1.0"))
    assert package.environment() == {"FROM_PLUGIN": "1", "SHARED": "settings"}
    assert package.config_settings()["shared"] == "settings"
    # the settings' edits first, then the plugin's
    assert [str(r) for r in package.build_requires([Requirement("wheel")], dynamic=False)] \
        == ["setuptools"]


def test_a_plugin_named_in_the_settings_file(site: tuple[Path, str], tmp_path: Path) -> None:
    _, module = site
    (tmp_path / "local_plugin.py").write_text(PLUGIN.replace('version = "3"', 'version = "7"'))
    settings = parse_settings({"packages": {
        "foo": {"plugin": f"{module}:Builder"},
        "bar": {"plugin": "local_plugin.py:FooHooks"}}}, tmp_path)
    plugins = load_plugins(settings)
    foo = plugins.hooks(FOO, "1.0", settings.for_package(FOO, "1.0"))
    assert foo.plugin is not None and foo.plugin.spec == f"{module}:Builder"  # replaces the EP
    assert foo.plugin.distribution == "tinyplug"  # found through top_level / RECORD
    out = tmp_path / "out"
    out.mkdir()
    wheel = foo.build_wheel(tmp_path, out, object(), tmp_path / "log")  # type: ignore[arg-type]
    assert wheel == out / "foo-1.0-py3-none-any.whl"
    bar_name = canonicalize_name("bar")
    with pytest.raises(InternalError, match="never loaded"):
        NO_PLUGINS.hooks(bar_name, "2", settings.for_package(bar_name, "2"))
    bar = plugins.hooks(bar_name, "2", settings.for_package(bar_name, "2"))
    assert bar.plugin is not None and bar.plugin.plugin_version == "7"
    assert bar.plugin.distribution is None and bar.plugin.path == str(tmp_path / "local_plugin.py")
    root = source_tree(tmp_path)
    bar.prepare_source(root, tmp_path / "log")
    assert "fixed" in (root / "setup.cfg").read_text()


def test_plugin_errors_fail_the_build_naming_the_plugin(site: tuple[Path, str],
                                                        tmp_path: Path) -> None:
    _, module = site
    settings = parse_settings({"packages": {"foo": {"plugin": f"{module}:Broken"},
                                            "bar": {"plugin": f"{module}:Exits"}}}, tmp_path)
    plugins = load_plugins(settings)
    broken = plugins.hooks(FOO, "1.0", settings.for_package(FOO, "1.0"))
    log = tmp_path / "build.log"
    with pytest.raises(BuildFailure) as info:
        broken.prepare_source(source_tree(tmp_path), log)
    err = info.value
    assert f"{module}:Broken" in err.message and "prepare_source for foo 1.0" in err.message
    assert "cargo vendor failed" in err.message and err.hint and err.log == str(log)
    assert "Traceback" in log.read_text() and "RuntimeError" in err.tail
    cases = [
        (lambda: broken.build_requires([], dynamic=False), "not a list of requirements"),
        (lambda: broken.requires([]), "invalid requirement 'bad req !'"),
        (lambda: broken.environment(), "SOURCE_DATE_EPOCH"),
        (lambda: broken.config_settings(), "config settings are strings"),
        (lambda: broken.build_wheel(tmp_path, tmp_path / "o", object(), log),  # type: ignore[arg-type]
         "not a wheel it wrote"),
    ]
    for call, words in cases:
        with pytest.raises(BuildFailure, match=words):
            call()
    bar_name = canonicalize_name("bar")
    exits = plugins.hooks(bar_name, "1", settings.for_package(bar_name, "1"))
    with pytest.raises(BuildFailure, match="extra_env for bar 1: 3"):
        exits.environment()


def test_broken_plugins_are_reported_before_anything_runs(site: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    folder, module = site
    entry_points = folder / "tinyplug-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text(f"[{ENTRY_POINT_GROUP}]\nfoo = {module}:FooHooks\n"
                            f"FOO = {module}:Builder\nbaz = {module}:NOT_HOOKS\n"
                            f"qux = no_such_module_here:X\nwhole = {module}\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    settings = parse_settings({"packages": {
        "a": {"plugin": f"{module}:Missing"}, "b": {"plugin": "syntax.py:X"}}}, tmp_path)
    with pytest.raises(UserInputError) as info:
        load_plugins(settings)
    message = info.value.message
    for words in ("a second plugin for foo",
                  "is not a subclass of wheelstrap.BuildHooks",
                  "ModuleNotFoundError", "must name a class",
                  f"packages.a.plugin = '{module}:Missing': AttributeError",
                  "packages.b.plugin = 'syntax.py:X': SyntaxError", "of tinyplug"):
        assert words in message, words


def test_digests(site: tuple[Path, str], tmp_path: Path) -> None:
    folder, module = site
    assert hooks_digest(None) == hooks_digest(None)
    empty = PackageHooks(FOO, "1.0")
    assert empty.digest() == PackageHooks(FOO, "2.0").digest()  # the version is elsewhere
    plugins = load_plugins(NO_SETTINGS)
    with_plugin = plugins.hooks(FOO, "1.0")
    assert with_plugin.digest() != empty.digest()
    assert plugins.digest() != NO_PLUGINS.digest() == hooks.Plugins().digest()
    settings = parse_settings({"packages": {"foo": {"env": {"A": "1"}}}}, tmp_path)
    assert PackageHooks(FOO, "1.0", settings.for_package(FOO, "1.0")).digest() != empty.digest()
    # a change to the plugin's file changes its digest (a new process would load it anew)
    (folder / f"{module}.py").write_text(PLUGIN + "\n# changed\n")
    hooks._instances.clear()
    again = load_plugins(NO_SETTINGS).hooks(FOO, "1.0")
    assert again.plugin is not None and with_plugin.plugin is not None
    assert again.plugin.sha256 != with_plugin.plugin.sha256
    assert again.digest() != with_plugin.digest()


def test_package_hooks_pickle_and_reload(site: tuple[Path, str], tmp_path: Path) -> None:
    package = load_plugins(NO_SETTINGS).hooks(FOO, "1.0")
    copy = pickle.loads(pickle.dumps(package))
    hooks._instances.clear()  # as in a fresh worker process
    root = source_tree(tmp_path)
    copy.prepare_source(root, tmp_path / "log")
    assert "fixed" in (root / "setup.cfg").read_text()
    assert copy.digest() == package.digest()


def test_patches_then_plugin(site: tuple[Path, str], tmp_path: Path) -> None:
    if shutil.which("patch") is None:
        pytest.skip("GNU patch missing")
    (tmp_path / "p.patch").write_text(textwrap.dedent("""\
        --- a/setup.cfg
        +++ b/setup.cfg
        @@ -1,2 +1,3 @@
         [metadata]
         name = broken
        +version = 1.0
        """))
    settings = parse_settings({"packages": {"foo": {"patches": ["p.patch"]}}}, tmp_path)
    package = load_plugins(settings).hooks(FOO, "1.0", settings.for_package(FOO, "1.0"))
    root = source_tree(tmp_path)
    package.prepare_source(root, tmp_path / "log", mtime=1_000_000_000)
    assert (root / "setup.cfg").read_text() == "[metadata]\nname = fixed\nversion = 1.0\n"


def test_the_base_class_does_nothing(tmp_path: Path) -> None:
    base = BuildHooks()
    ctx = HookContext(FOO, "1.0", parse_settings({}, tmp_path).for_package(FOO, "1.0"))
    reqs = (Requirement("x"),)
    assert base.edit_build_requires(ctx, reqs, dynamic=True) == reqs
    assert base.edit_requires(ctx, reqs) == reqs
    assert base.extra_env(ctx) == {} and base.extra_config_settings(ctx) == {}
    assert base.build_wheel(ctx, tmp_path, tmp_path, object()) is None  # type: ignore[arg-type]
    base.prepare_source(ctx, tmp_path)


def test_a_patch_changes_build_system_before_it_is_read(tmp_path: Path) -> None:
    """The order the planner must keep: unpack, patch, then read [build-system]."""
    import io
    import tarfile

    from wheelstrap.dist.sources import parse_build_system, read_pyproject, unpack

    if shutil.which("patch") is None:
        pytest.skip("GNU patch missing")
    pyproject = (b'[build-system]\nrequires = ["setuptools-scm", "python-sbom"]\n'
                 b'build-backend = "scm_backend"\nbackend-path = ["../outside"]\n')
    sdist = tmp_path / "scm-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("scm-1.0/pyproject.toml")
        info.size = len(pyproject)
        tar.addfile(info, io.BytesIO(pyproject))
    (tmp_path / "backend-path.patch").write_text(textwrap.dedent("""\
        --- a/pyproject.toml
        +++ b/pyproject.toml
        @@ -1,4 +1,4 @@
         [build-system]
         requires = ["setuptools-scm", "python-sbom"]
        -build-backend = "scm_backend"
        -backend-path = ["../outside"]
        +build-backend = "setuptools.build_meta"
        +backend-path = ["."]
        """))
    settings = parse_settings({"packages": {"scm==1.0": {
        "patches": ["backend-path.patch"],
        "build-requires": {"remove": ["python-sbom"], "add": ["setuptools>=61"]}}}}, tmp_path)
    name = canonicalize_name("scm")
    package = PackageHooks(name, "1.0", settings.for_package(name, "1.0"))
    unpacked = unpack(sdist, tmp_path / "src")
    package.prepare_source(unpacked.root, tmp_path / "log", mtime=unpacked.source_date_epoch)
    system = parse_build_system(read_pyproject(unpacked.root), "scm 1.0")
    assert system.backend == "setuptools.build_meta" and system.backend_path == (".",)
    assert [str(r) for r in package.build_requires(system.requires, dynamic=False)] \
        == ["setuptools-scm", "setuptools>=61"]


@pytest.mark.network
def test_settings_make_a_real_pypi_release_build(tmp_path: Path) -> None:
    """setuptools-scm 10.0.2 from PyPI: its backend cannot even be loaded as released; with
    tests/data/settings-scm it builds.  The build environment comes from PyPI wheels here
    (this tests the settings, not the bootstrap)."""
    import subprocess

    from pyproject_hooks import BuildBackendHookCaller

    from wheelstrap.build.backend import uv_binary
    from wheelstrap.config.settings import read_settings
    from wheelstrap.dist.sources import parse_build_system, read_pyproject, unpack
    from wheelstrap.index.client import IndexClient

    if shutil.which("patch") is None:
        pytest.skip("GNU patch missing")
    client = IndexClient()
    page = client.project_page("setuptools-scm")
    assert page is not None
    sdist = next(f for f in page.files if f.filename == "setuptools_scm-10.0.2.tar.gz")
    archive = tmp_path / sdist.filename
    client.download(sdist.url, archive, sdist.sha256)
    client.close()
    uv = uv_binary()
    env_dir = tmp_path / "env"
    subprocess.run([uv, "venv", "-q", "--no-config", str(env_dir)], check=True)
    python = str(env_dir / "bin" / "python")
    subprocess.run([uv, "pip", "install", "-q", "--no-config", "--python", python,
                    "setuptools>=77.0.3", "vcs-versioning>=1.0.0.dev0"], check=True)

    def build(hooks: PackageHooks) -> str:
        unpacked = unpack(archive, tmp_path / "src")
        hooks.prepare_source(unpacked.root, tmp_path / "log", mtime=unpacked.source_date_epoch)
        system = parse_build_system(read_pyproject(unpacked.root), "setuptools-scm 10.0.2")
        environ = {**hooks.environment(), "SOURCE_DATE_EPOCH": str(unpacked.source_date_epoch)}

        def runner(cmd: object, cwd: str | None = None,
                   extra_environ: dict[str, str] | None = None) -> None:
            import os

            subprocess.run(cmd, cwd=cwd, check=True, capture_output=True,  # type: ignore[call-overload]
                           env={**os.environ, **(extra_environ or {}), **environ})

        caller = BuildBackendHookCaller(
            str(unpacked.root), system.backend, runner=runner, python_executable=python,
            backend_path=list(system.backend_path) if system.backend_path else None)
        return caller.build_wheel(str(tmp_path / "dist"), hooks.config_settings())

    name = canonicalize_name("setuptools-scm")
    # as released, its backend-path leads out of the sdist: refused when it is read
    with pytest.raises(SourceError, match=r"backend-path entry '\.\./vcs-versioning/src'"):
        build(PackageHooks(name, "10.0.2"))
    settings = read_settings(Path(__file__).parent / "data" / "settings-scm" / "wheelstrap.toml")
    hooks = load_plugins(settings).hooks(name, "10.0.2", settings.for_package(name, "10.0.2"))
    assert build(hooks) == "setuptools_scm-10.0.2-py3-none-any.whl"


def test_an_installed_plugin_is_seen_by_the_warm_check(site: tuple[Path, str]) -> None:
    from wheelstrap.config import fastpath

    assert fastpath.plugins_installed()
