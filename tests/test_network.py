"""Against the real PyPI: few and small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wheelstrap.index.server import IndexServer

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


def _account_for(proc: subprocess.CompletedProcess[str], out, method: str) -> None:
    """Either a fixed point, or a precise account of what stopped the run."""
    import json

    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    assert "Traceback" not in proc.stderr
    cycles = CliRunner().invoke(main, ["cycles", str(out)]).output
    assert "coherent-build 0.31.1 -(build-system: coherent.build)-> coherent-build 0.31.1" \
        in cycles
    if proc.returncode == 0:
        (cycle,) = json.loads((out / "cycles.json").read_text())["cycles"]
        assert cycle["fixed_point"] is True
        assert cycle["broken_by"]["method"] == method
    else:
        # The account: which build failed, why (its log), and the chain of requirements
        # from the cycle member to it.
        assert "error: Building " in proc.stderr and "last lines of" in proc.stderr
        assert "coherent-build 0.31.1 -(install:" in proc.stderr


def test_coherent_build_self_cycle_from_pypi(tmp_path):
    """coherent.build 0.31.1 builds with itself and has no backend-path: a real self-cycle.

    First with its published wheel (fetched from PyPI, verified by sha256) imported as a
    seed, then with no seed at all (it is pure Python, so a stage-0 wheel is packed from
    its sdist).  Each run must reach a fixed point or stop with a precise reason.  The
    install closure of coherent.build (coherent.deps -> keyring -> SecretStorage ->
    cryptography) needs maturin and cryptography, Rust builds whose crates are vendored
    and checked against their locks (docs/rust.md).
    """
    from packaging.utils import parse_wheel_filename

    from wheelstrap.index.client import IndexClient

    client = IndexClient()
    page = client.project_page("coherent.build")
    assert page is not None
    (published,) = [f for f in page.files if f.filename.endswith(".whl")
                    and str(parse_wheel_filename(f.filename)[1]) == "0.31.1"]
    wheel = tmp_path / published.filename
    client.download(published.url, wheel, published.sha256)
    client.close()
    store = tmp_path / "store"
    subprocess.run([sys.executable, "-m", "wheelstrap", "seeds", "add", str(store), str(wheel),
                    "--origin", published.url], check=True)
    cons = tmp_path / "constraints.txt"
    # platformdirs >= 4.10 builds with python-sbom, which the PyPI reachable here does not
    # have; cryptography 51's lock pins a crate the crates registry here lacks (both this
    # registry's gaps: see tests/data/constraints-registry-gaps.txt)
    gaps = Path(__file__).parent / "data" / "constraints-registry-gaps.txt"
    cons.write_text("coherent.build==0.31.1\nplatformdirs<4.10\n" + gaps.read_text())
    out = tmp_path / "out"
    base = [sys.executable, "-m", "wheelstrap", "bootstrap", "coherent.build", "-c", str(cons),
            "-o", str(out)]
    seeded = subprocess.run([*base, "--seeds", str(store)], capture_output=True, text=True)
    _account_for(seeded, out, "seeds")
    # the same output directory: everything built before is reused by content address
    seedless = subprocess.run(base, capture_output=True, text=True)
    _account_for(seedless, out, "source")
