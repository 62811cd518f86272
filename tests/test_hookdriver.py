"""Both PEP 517 hooks of a build in one interpreter (``backend.prepare_and_build``), and
the planner's use of it: the same wheels as one interpreter per hook, a fallback when a
backend cannot take both, and the events and durations that say what ran."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from scenario import BACKEND_SOURCE, Pkg, make_sdist

from wheelstrap.build import backend
from wheelstrap.dist.sources import unpack
from wheelstrap.errors import BuildFailure
from wheelstrap.model.build import BackendSpec
from wheelstrap.plan.planner import Planner

TINY = BackendSpec("tinybackend", ("_backend",))

# A backend that refuses to build in the interpreter that answered get_requires.
ONE_HOOK_PER_PROCESS = BACKEND_SOURCE + '''
_ASKED = []
_get_requires = get_requires_for_build_wheel
_build_wheel = build_wheel


def get_requires_for_build_wheel(config_settings=None):
    _ASKED.append(True)
    return _get_requires(config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _ASKED:
        raise RuntimeError("this backend takes one hook per process")
    return _build_wheel(wheel_directory, config_settings, metadata_directory)
'''


def _env(tmp_path: Path, pkg: Pkg, sandbox: str = "bubblewrap"
         ) -> tuple[Path, backend.BuildEnv]:
    sdist = make_sdist(pkg, tmp_path / "dists")
    root = unpack(sdist, tmp_path / "work" / "src").root
    settings = backend.BuildSettings(315532800, True, sandbox=sandbox)  # type: ignore[arg-type]
    runner = backend.Runner(tmp_path / "work" / "env", tmp_path / "work" / "build.log",
                            settings)
    env = backend.BuildEnv(runner.env_dir, sys.executable, runner)
    env.create()
    return root, env


def test_one_interpreter_answers_and_builds(tmp_path):
    root, env = _env(tmp_path, Pkg("solo"))
    results = backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")
    assert results.requires == [] and not results.build_failed
    assert results.wheel is not None and results.wheel.name == "solo-1.0-py3-none-any.whl"
    assert set(results.times) == {"get_requires_for_build_wheel", "build_wheel"}
    # the log shows one interpreter for both hooks
    assert env.runner.log.read_text().count("hookdriver.py") == 1


def test_dynamic_requirements_stop_after_the_first_hook(tmp_path):
    root, env = _env(tmp_path, Pkg("asks", dynamic=["more>=1"]))
    results = backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")
    assert results.requires == ["more>=1"]
    assert results.wheel is None and not results.build_failed
    assert not list((tmp_path / "work" / "dist").iterdir())


@pytest.mark.parametrize("dynamic, goes_on", [
    (['ruff>=0.1; extra == "all"', "mypy ; extra=='dev'"], True),  # flit's optional deps
    (['ruff; extra == "all" or python_version > "3"'], False),  # not the simple form
    (['ruff; python_version > "3"'], False),
    (["ruff"], False),
])
def test_requirements_no_build_can_use_do_not_stop_the_build(tmp_path, dynamic, goes_on):
    root, env = _env(tmp_path, Pkg("flitlike", dynamic=dynamic))
    results = backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")
    assert results.requires == dynamic
    assert (results.wheel is not None) is goes_on and not results.build_failed


def test_a_backend_that_fails_the_second_hook_is_reported_for_a_rebuild(tmp_path):
    pkg = Pkg("picky", extra_files={"_backend/tinybackend.py": ONE_HOOK_PER_PROCESS})
    root, env = _env(tmp_path, pkg)
    results = backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")
    assert results.requires == [] and results.wheel is None and results.build_failed
    assert "one hook per process" in env.runner.log.read_text()
    # ... and built alone, the usual way, it works
    wheel = backend.build_wheel(root, TINY, env, tmp_path / "work" / "dist2")
    assert wheel.name == "picky-1.0-py3-none-any.whl"


@pytest.mark.parametrize("spec, expected", [
    (BackendSpec("no_such_backend", ("_backend",)), "could not be imported"),
    # a backend-path whose module is found elsewhere (json, from the standard library)
    (BackendSpec("json", ("_backend",)), "not from its backend-path"),
])
def test_a_backend_that_cannot_be_loaded_is_a_clear_failure(tmp_path, spec, expected):
    root, env = _env(tmp_path, Pkg("broken"))
    with pytest.raises(BuildFailure, match=expected):
        backend.prepare_and_build(root, spec, env, tmp_path / "work" / "dist")


@pytest.mark.parametrize("body, expected", [
    ("    return 'setuptools'\n", "not a list of strings"),
    ("    raise ValueError('no')\n", "get_requires_for_build_wheel failed"),
])
def test_a_first_hook_that_misbehaves_is_a_failure_of_that_hook(tmp_path, body, expected):
    source = BACKEND_SOURCE + "\ndef get_requires_for_build_wheel(config_settings=None):\n" + body
    root, env = _env(tmp_path, Pkg("odd", extra_files={"_backend/tinybackend.py": source}))
    with pytest.raises(BuildFailure, match=expected):
        backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")


def test_environments_are_copies_that_know_their_own_place(tmp_path):
    import subprocess

    _, env = _env(tmp_path, Pkg("first"))
    other = backend.BuildEnv(tmp_path / "second" / "env", sys.executable, env.runner)
    other.create()
    for e in (env, other):
        assert (e.path / "pyvenv.cfg").is_file()
        assert not (e.path / "bin" / "activate").exists()  # a shell's, never a build's
        out = subprocess.run([e.interpreter, "-c", "import sys, sysconfig; "
                              "print(sys.prefix); print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[0] == str(e.path.absolute())
        assert Path(out[1]).is_dir() and Path(out[1]).is_relative_to(e.path.absolute())


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _tree() -> list[Pkg]:
    return [Pkg("app", deps=["lib-a", "lib-b", "lib-c"]),
            Pkg("lib-a", dynamic=["helper"]),  # asks for more: two interpreters
            Pkg("lib-b"),
            Pkg("lib-c", dynamic=['helper; extra == "docs"']),  # nothing a build uses
            Pkg("helper")]


def test_the_wheels_are_those_of_one_interpreter_per_hook(serve_index, run_bootstrap, tmp_path,
                                                          monkeypatch):
    index = serve_index(_tree())
    combined = run_bootstrap("app", index=index.url, out=tmp_path / "combined")
    assert combined.code == 0, combined.stderr
    monkeypatch.setattr(Planner, "_then", lambda *args: None)
    separate = run_bootstrap("app", index=index.url, out=tmp_path / "separate")
    assert separate.code == 0, separate.stderr
    wheels = sorted(p.name for p in (tmp_path / "combined" / "wheels").glob("*.whl"))
    assert len(wheels) == 5
    for name in wheels:
        assert (tmp_path / "combined" / "wheels" / name).read_bytes() == \
            (tmp_path / "separate" / "wheels" / name).read_bytes()
    for doc in ("build-order.json", "graph.json"):
        assert (tmp_path / "combined" / doc).read_text() == \
            (tmp_path / "separate" / doc).read_text()

    def tasks(out: Path) -> dict[str, list[str]]:
        seen: dict[str, list[str]] = {}
        for e in _events(out):
            if e["event"] in ("started", "finished"):
                follows = " (follows)" if e.get("follows") == "prepare" else ""
                seen.setdefault(e["node"], []).append(f"{e['event']} {e['phase']}{follows}")
        return seen

    one = tasks(tmp_path / "combined")
    # one task, both hooks: the build started as the prepare ended, in its interpreter
    both = ["started prepare", "finished prepare", "started build (follows)", "finished build"]
    assert one["lib-b 1.0"] == both
    assert one["lib-c 1.0"] == both
    # the backend asked for more: the build ran later, on its own
    assert one["lib-a 1.0"] == ["started prepare", "finished prepare", "started build",
                                "finished build"]
    two = tasks(tmp_path / "separate")
    assert two["lib-b 1.0"] == ["started prepare", "finished prepare", "started build",
                                "finished build"]
    logs = (tmp_path / "combined" / "logs" / "lib-b-1.0.log").read_text()
    assert logs.count("hookdriver.py") == 1 and "_in_process.py" not in logs


def test_a_backend_that_takes_one_hook_per_process_still_builds(serve_index, run_bootstrap):
    pkg = Pkg("picky", extra_files={"_backend/tinybackend.py": ONE_HOOK_PER_PROCESS})
    run = run_bootstrap("picky", index=serve_index([pkg]).url)
    assert run.code == 0, run.stderr
    assert (run.out / "wheels" / "picky-1.0-py3-none-any.whl").is_file()
    log = (run.out / "logs" / "picky-1.0.log").read_text()
    assert "one hook per process" in log and "building again alone" in log
    assert "_in_process.py build_wheel" in log


def test_a_build_that_fails_in_both_attempts_is_reported_as_the_build_failure(
        serve_index, run_bootstrap):
    source = BACKEND_SOURCE + "\ndef build_wheel(wheel_directory, config_settings=None, " \
        "metadata_directory=None):\n    raise RuntimeError('cannot build this')\n"
    pkg = Pkg("doomed", extra_files={"_backend/tinybackend.py": source})
    run = run_bootstrap("doomed", index=serve_index([pkg]).url)
    assert run.code != 0
    assert "failed in build_wheel" in run.stderr
    # the log tail shows the second attempt's error, in a fresh interpreter
    assert run.stderr.count("cannot build this") >= 1
    log = (run.out / "logs" / "doomed-1.0.log").read_text()
    assert log.count("RuntimeError: cannot build this") == 2 and "building again alone" in log
    assert not list((run.out / "wheels").glob("*.whl"))


def test_without_the_sandbox_both_hooks_share_an_interpreter_too(serve_index, run_bootstrap,
                                                                 tmp_path):
    index = serve_index(_tree())
    plain = run_bootstrap("app", "--sandbox", "none", index=index.url, out=tmp_path / "none")
    assert plain.code == 0, plain.stderr
    boxed = run_bootstrap("app", index=index.url, out=tmp_path / "boxed")
    assert boxed.code == 0, boxed.stderr
    assert plain.wheels == boxed.wheels and len(plain.wheels) == 5
    for name in plain.wheels:  # the sandbox changes where a build may write, not what
        assert (tmp_path / "none" / "wheels" / name).read_bytes() == \
            (tmp_path / "boxed" / "wheels" / name).read_bytes()
    log = (tmp_path / "none" / "logs" / "lib-b-1.0.log").read_text()
    assert log.count("hookdriver.py") == 1 and "# sandbox:" not in log


@pytest.mark.parametrize("written, expected", [
    ("[1, 2]", "not a JSON object"),
    ("{not json", "not JSON"),
])
def test_a_backend_that_forges_the_drivers_result_is_a_clear_failure(tmp_path, written,
                                                                      expected):
    # build_wheel overwrites the driver's result file and leaves at once
    source = BACKEND_SOURCE + (
        "\ndef build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        "    import os, sys\n"
        f"    open(os.path.join(sys.argv[1], 'output.json'), 'w').write({written!r})\n"
        "    os._exit(0)\n")
    root, env = _env(tmp_path, Pkg("forger", extra_files={"_backend/tinybackend.py": source}))
    with pytest.raises(BuildFailure, match=expected):
        backend.prepare_and_build(root, TINY, env, tmp_path / "work" / "dist")


def test_a_warmed_template_spares_the_first_build_uv_venv(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "_templates", backend._Templates())
    settings = backend.BuildSettings(0)
    # an interpreter that cannot make one is left for the first build to meet, and report
    backend.warm_template(str(tmp_path / "no-python"), settings)
    assert backend._templates._made == {}
    backend.warm_template(sys.executable, settings)
    calls = []
    monkeypatch.setattr(backend.BuildEnv, "make", lambda self, path: calls.append(path))
    runner = backend.Runner(tmp_path / "env", tmp_path / "build.log", settings)
    env = backend.BuildEnv(runner.env_dir, sys.executable, runner)
    env.create()
    assert calls == [] and (env.path / "pyvenv.cfg").is_file()


@pytest.mark.parametrize("failing", ["environment", "source"])
def test_tree_and_environment_are_made_together_and_both_finish(tmp_path, monkeypatch,
                                                                 failing):
    import threading
    import time

    from wheelstrap.build import tasks

    finished: list[str] = []
    real_source, real_environment = tasks._source, tasks._environment

    def environment(*args, **kwargs):
        time.sleep(0.2)  # still at work when the tree is done
        if failing == "environment":
            raise BuildFailure("uv could not install the build requirements")
        real_environment(*args, **kwargs)
        finished.append("environment")

    def source(*args, **kwargs):
        assert threading.current_thread().name != "environment"
        if failing == "source":
            raise BuildFailure("the sdist is refused")
        root = real_source(*args, **kwargs)
        finished.append("source")
        return root

    monkeypatch.setattr(tasks, "_environment", environment)
    monkeypatch.setattr(tasks, "_source", source)
    sdist = make_sdist(Pkg("both"), tmp_path / "dists")
    work = tmp_path / "work"
    work.mkdir()
    settings = backend.BuildSettings(0)
    runner = backend.Runner(work / "env", work / "build.log", settings)
    env = backend.BuildEnv(runner.env_dir, sys.executable, runner)
    spec = _spec_for(sdist)
    with pytest.raises(BuildFailure):
        tasks._source_and_environment(spec, sdist, work, env, [], work / "build.log")
    # whichever failed, the other had finished when the failure came back
    assert finished == ["source"] if failing == "environment" else ["environment"]


def _spec_for(sdist: Path):
    from packaging.utils import canonicalize_name

    from wheelstrap.config.hooks import NO_PLUGINS
    from wheelstrap.config.settings import NO_SETTINGS
    from wheelstrap.fsutil import sha256_file
    from wheelstrap.model.build import BuildPolicy, BuildSpec, InputFile, UnitKey

    name = canonicalize_name(sdist.name.split("-")[0])
    return BuildSpec(
        name=name, version="1.0", unit=UnitKey(), phase="prepare",
        sdist=InputFile(sdist.name, sha256_file(sdist)), backend=TINY, env=(), target=(),
        source_date_epoch=0, policy=BuildPolicy(),
        hooks=NO_PLUGINS.hooks(name, "1.0", NO_SETTINGS.for_package(name, "1.0")))
