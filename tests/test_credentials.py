"""Credentials in an index URL reach the index, and nothing that a run writes or shows."""

from __future__ import annotations

from pathlib import Path

from scenario import Pkg


def test_an_index_url_with_credentials_leaves_no_trace_in_the_output(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    index = serve_index([Pkg("app", deps=["lib"], build_requires=["tool"]), Pkg("lib"),
                         Pkg("tool")])
    secret = "s3cr3t-t0ken"
    url = index.url.replace("http://", f"http://builder:{secret}@")
    key = tmp_path / "k"
    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    assert CliRunner().invoke(main, ["keys", "generate", str(key)]).exit_code == 0
    run = run_bootstrap("app", "--signing-key", str(key), index=url)
    assert run.code == 0, run.stderr
    assert secret not in run.stderr
    leaked = [str(p.relative_to(run.out)) for p in run.out.rglob("*")
              if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
    # the index is still named, without them
    statement = next((run.out / "provenance").glob("app-*.intoto.json")).read_text()
    assert index.url in statement
    # an error names the index without them too
    missing = run_bootstrap("nothing-here", index=url, out=tmp_path / "other")
    assert missing.code == 1 and secret not in missing.stderr
    assert index.url in missing.stderr
