"""Against the real PyPI: few and small."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wheelstrap.server import IndexServer

pytestmark = pytest.mark.network


def test_bootstrap_flit_core_and_packaging_from_pypi(tmp_path):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", "flit_core", "packaging",
                    "-o", str(out)], check=True)
    wheels = sorted(p.name.split("-")[0] for p in (out / "wheels").glob("*.whl"))
    assert wheels == ["flit_core", "packaging"]
    pip = [sys.executable, "-m", "pip", "install", "--isolated", "-q", "--no-cache-dir"]
    subprocess.run([*pip, "--no-index", "--find-links", str(out / "wheels"),
                    "--target", str(tmp_path / "a"), "packaging"], check=True)
    assert (tmp_path / "a" / "packaging" / "version.py").is_file()
    with IndexServer(out / "wheels") as server:
        subprocess.run([*pip, "--index-url", server.url, "--target", str(tmp_path / "b"),
                        "packaging"], check=True)
    assert (tmp_path / "b" / "packaging" / "version.py").is_file()
