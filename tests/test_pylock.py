"""pylock.toml: the lock of the targets' environment, installed by uv, offline."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import uv
from reportdocs import small_run, write_out
from test_bootstrap import TREE

from wheelstrap.errors import UserInputError
from wheelstrap.model.schema import read_graph
from wheelstrap.store.pylock import install_closure, write_pylock


def test_a_bootstrap_locks_and_uv_installs_the_lock_offline(serve_index, run_bootstrap,
                                                           tmp_path: Path) -> None:
    index = serve_index(TREE)
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    lock = write_pylock(run.out)
    doc = tomllib.loads(lock.read_text())
    assert doc["lock-version"] == "1.0" and doc["created-by"] == "wheelstrap"
    # the targets' environment: build-only tools (tinyback, backhelper) are not in it
    assert [p["name"] for p in doc["packages"]] == ["app", "lib-one", "lib-two", "speedup"]
    order = {b["wheel"]: b["sha256"]
             for b in json.loads((run.out / "build-order.json").read_text())["builds"]}
    for p in doc["packages"]:
        (wheel,) = p["wheels"]
        assert wheel["path"] == f"wheels/{wheel['name']}"
        assert wheel["hashes"] == {"sha256": order[wheel["name"]]}
        assert wheel["size"] == (run.out / wheel["path"]).stat().st_size

    uv_bin = uv.find_uv_bin()
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_NO_CONFIG": "1", "UV_OFFLINE": "1"}
    subprocess.run([uv_bin, "venv", "--offline", "--no-config", "-q", str(venv)], check=True,
                   env=env)
    python = venv / "bin" / "python"
    subprocess.run([uv_bin, "pip", "install", "--offline", "--no-config", "--python",
                    str(python), "-r", str(lock)], check=True, env=env, cwd=tmp_path)
    listed = subprocess.run([python, "-c", "import app, lib_one, lib_two, speedup; "
                             "from importlib.metadata import version; print(version('app'))"],
                            check=True, capture_output=True, text=True)
    assert listed.stdout.strip() == "1.0"
    # a wheel that changed after the run is refused, not locked with a stale hash
    wheel = run.out / doc["packages"][0]["wheels"][0]["path"]
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(UserInputError, match=r"build-order\.json records"):
        write_pylock(run.out)


def test_a_package_of_the_environment_that_was_not_built_is_an_error(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    assert install_closure(read_graph(out / "graph.json")) == [
        "app 1.0", "cyc-a 1.0", "lib 2.0", "lib-two 1.0"]
    with pytest.raises(UserInputError, match=r"lib-two 1\.0") as err:
        write_pylock(out)
    assert err.value.hint and not (out / "pylock.toml").exists()
