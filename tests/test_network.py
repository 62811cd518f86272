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


def test_coherent_build_self_cycle_with_its_published_wheel_as_seed(tmp_path):
    """coherent.build 0.31.1 builds with itself and has no backend-path: a real self-cycle.

    Its published wheel, fetched by sha256 from PyPI, is imported as a seed.  wheelstrap
    must find the cycle, break it with that seed, and then either reach a fixed point or
    stop with a precise reason.  On this kind of machine the reason is known: the seed's
    install closure (coherent.deps -> keyring -> SecretStorage -> cryptography) needs
    maturin, a Rust build whose crates cannot be fetched with the network cut off.
    """
    import json

    from packaging.utils import parse_wheel_filename

    from wheelstrap.client import IndexClient

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
    # platformdirs >= 4.10 builds with python-sbom, which PyPI does not have.
    cons.write_text("coherent.build==0.31.1\nplatformdirs<4.10\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", "coherent.build",
                           "-c", str(cons), "--seeds", str(store), "-o", str(out)],
                          capture_output=True, text=True)
    assert ("coherent-build 0.31.1 -(build-system: coherent.build)-> coherent-build 0.31.1; "
            f"breaking it with seeds: {published.filename}") in proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        (cycle,) = json.loads((out / "cycles.json").read_text())["cycles"]
        assert cycle["fixed_point"] is True
        assert cycle["broken_by"]["seeds"][0]["sha256"] == published.sha256
    else:
        # The precise account: which build failed, why, and the chain from the cycle to it.
        assert "error: Building " in proc.stderr
        assert "coherent-build 0.31.1 -(build-system: coherent.build)-> coherent-build 0.31.1" \
            in proc.stderr
        assert "crates.io" in proc.stderr or "hint:" in proc.stderr


def test_coherent_build_self_cycle_with_no_seed(tmp_path):
    """The same real self-cycle, entered with no binary at all: coherent.build is pure
    Python, so wheelstrap packs a stage-0 wheel from its sdist.  The run then needs the
    same install closure as above, so it either reaches a fixed point or stops precisely
    (here: maturin's Rust crates cannot be fetched with the network cut off)."""
    import json

    cons = tmp_path / "constraints.txt"
    cons.write_text("coherent.build==0.31.1\nplatformdirs<4.10\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", "coherent.build",
                           "-c", str(cons), "-o", str(out)], capture_output=True, text=True)
    assert ("coherent-build 0.31.1 -(build-system: coherent.build)-> coherent-build 0.31.1; "
            "breaking it with stage-0 wheels packed from the sources of coherent-build 0.31.1"
            ) in proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        (cycle,) = json.loads((out / "cycles.json").read_text())["cycles"]
        assert cycle["fixed_point"] is True and cycle["broken_by"]["method"] == "source"
    else:
        assert "error: Building " in proc.stderr
