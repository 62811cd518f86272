"""The program's entry point: the collector held while it starts, and given back."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from wheelstrap import entry
from wheelstrap.ui import cli


@pytest.fixture
def collector():
    was = gc.isenabled()
    yield
    gc.unfreeze()
    cli.collector_held = False
    if was:
        gc.enable()


@pytest.mark.parametrize("argv", [["--version"], ["graph", "--help"], ["bootstrap", "--help"]])
def test_the_collector_runs_again_whatever_the_command(collector, monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", ["wheelstrap", *argv])
    with pytest.raises(SystemExit) as exc:
        entry.run()
    assert exc.value.code == 0
    assert gc.isenabled()
    assert not cli.collector_held
    assert gc.get_freeze_count() > 0  # what start-up made is left out of collections


def test_a_command_runs_with_the_collector_on(collector, monkeypatch, tmp_path):
    """The work itself (here: a graph read) runs with the collector collecting."""
    seen = []
    real = cli.start_collecting

    def spy() -> None:
        real()
        seen.append(gc.isenabled())

    monkeypatch.setattr(cli, "start_collecting", spy)
    monkeypatch.setattr(sys, "argv", ["wheelstrap", "graph", str(tmp_path / "none.json")])
    with pytest.raises(SystemExit):
        entry.run()
    assert seen and seen[0] is True


def test_python_dash_m_runs_the_program():
    out = subprocess.run([sys.executable, "-m", "wheelstrap", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert "wheelstrap, version " in out


def test_a_run_does_not_import_what_only_a_cluster_or_a_plugin_needs():
    # the HTTP server of a cluster's inputs and the entry points of plugins cost 10 ms of
    # every run's start; they are imported where they are used
    code = ("import sys, wheelstrap.ui.cli, wheelstrap.run.coordinator, wheelstrap.build.tasks; "
            "print(sorted({'http.server', 'importlib.metadata'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
