from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from daskprocs import dask  # noqa: F401 - the fixture of a real Dask cluster
from scenario import Pkg, make_dists

from wheelstrap.index.server import IndexServer
from wheelstrap.ui.cli import main


@pytest.fixture(autouse=True, scope="session")
def _hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep pip and uv away from the machine's own configuration and caches."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_", "WHEELSTRAP_")):
            del os.environ[key]
    os.environ["UV_CACHE_DIR"] = str(tmp_path_factory.mktemp("uv-cache"))
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    yield
    os.environ.clear()
    os.environ.update(saved)


@dataclass
class Index:
    url: str
    folder: Path


@pytest.fixture
def serve_index(tmp_path: Path) -> Iterator[Callable[[list[Pkg]], Index]]:
    """Start an index on 127.0.0.1 serving sdists of the given packages."""
    servers: list[IndexServer] = []

    def start(pkgs: list[Pkg]) -> Index:
        folder = make_dists(pkgs, tmp_path / f"dists{len(servers)}")
        server = IndexServer(folder, "127.0.0.1", 0).start()
        servers.append(server)
        return Index(server.url, folder)

    yield start
    for s in servers:
        s.close()


@dataclass
class Run:
    result: Result
    out: Path

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def stderr(self) -> str:
        return self.result.stderr

    @property
    def wheels(self) -> list[str]:
        return sorted(p.name for p in (self.out / "wheels").glob("*.whl"))


@pytest.fixture
def run_bootstrap(tmp_path: Path) -> Callable[..., Run]:
    def run(*args: str, index: str, out: Path | None = None) -> Run:
        out = out or tmp_path / "out"
        argv = ["bootstrap", "--index-url", index, "-o", str(out), "--retries", "0", *args]
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        return Run(result, out)

    return run
