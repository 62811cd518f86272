"""bench/breadth.py on a synthetic index: one tree builds, one is refused up front with
its missing parts named, one fails in its build with the class of the failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scenario import Pkg

ROOT = Path(__file__).resolve().parent.parent

BROKEN_BACKEND = """\
def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    print("sh: 1: autoreconf: not found")
    raise SystemExit(1)
"""


def test_breadth_reports_built_refused_and_failed_trees(serve_index, tmp_path):
    broken = Pkg("broken")
    broken.extra_files["_backend/tinybackend.py"] = BROKEN_BACKEND
    index = serve_index([Pkg("fine"), Pkg("needy"), broken,
                         Pkg("unbuildable", build_requires=["not-on-the-index"])])
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\nfine\nneedy\nbroken\nunbuildable\n")
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages.needy]\nsystem-requires = [{ command = '
                        '"wheelstrap-no-such-tool", debian = "no-such-deb" }]\n')
    results = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "breadth.py"), str(listing), "-o",
         str(tmp_path / "out"), "--index-url", index.url, "--settings", str(settings),
         "--tree-timeout", "300", "--json", str(results)],
        capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = {o["tree"]: o for o in json.loads(results.read_text())}
    assert got["fine"]["outcome"] == "built" and got["fine"]["built"] == 1
    assert got["needy"]["outcome"] == "refused"
    assert got["needy"]["detail"] == "missing wheelstrap-no-such-tool (no-such-deb)"
    assert got["broken"]["outcome"] == "failed"
    assert got["broken"]["detail"] == "command or header missing (broken 1.0)"
    # refused as the plan was made, no build hook run: with the class of the reason
    assert got["unbuildable"]["outcome"] == "refused", got["unbuildable"]
    assert got["unbuildable"]["detail"] == "build requirement not on the index"
    assert "1 built, 1 failed, 2 refused of 4" in proc.stdout
