"""Release-age rules (--min-release-age, --max-release-age, per-package min-release-age),
end to end through the CLI on local indexes of PEP 691 JSON pages with PEP 700 upload
times; and the rules' pure parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from packaging.version import Version
from scenario import Pkg, make_dists, write_json_index, write_static_index

from wheelstrap.index.age import AgeRule, apply_rule, upload_time
from wheelstrap.index.simple import JSON_TYPE, ProjectFile, ProjectPage, parse_json

AS_OF = "2026-12-01T00:00:00Z"

PICK = [Pkg("pick", "1.0"), Pkg("pick", "2.0", deps=["helper"]),
        Pkg("pick", "3.0", deps=["helper"]), Pkg("helper", "1.0")]
TIMES: dict[str, object] = {
    "pick-1.0.tar.gz": "2025-01-01T00:00:00Z",
    "pick-2.0.tar.gz": "2026-11-01T10:00:00.123456Z",
    "pick-3.0.tar.gz": "2026-11-29T00:00:00Z",  # two days before AS_OF
    "helper-1.0.tar.gz": "2026-10-01T00:00:00Z",
}


def _index(tmp_path: Path, pkgs: list[Pkg] = PICK, times: dict[str, object] | None = None,
           html_only: bool = False) -> str:
    folder = make_dists(pkgs, tmp_path / "dists")
    if html_only:
        return write_static_index(folder, pkgs).as_uri()
    return write_json_index(folder, pkgs, TIMES if times is None else times).as_uri()


def _order(out: Path) -> dict:
    return json.loads((out / "build-order.json").read_text())


def _text(stderr: str) -> str:
    return " ".join(stderr.split())


def test_a_cooldown_window_holds_back_the_newest_release(tmp_path, run_bootstrap):
    run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF,
                        index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert run.wheels == ["helper-1.0-py3-none-any.whl", "pick-2.0-py3-none-any.whl"]
    assert "cannot judge" not in run.stderr
    # the run record holds the rule and the time it was judged at
    assert _order(run.out)["resolution"] == {
        "min_release_age_days": 7.0, "max_release_age_days": None,
        "now": "2026-12-01T00:00:00Z", "multiple_versions": False,
        "held_back": [{"name": "pick", "version": "3.0", "upload_time": "2026-11-29T00:00:00Z",
                       "limit": "min-release-age", "days": 7.0}],
        "lock_skipped": []}
    # the statement holds the rule but not the time: it depends on the build's inputs
    statement = json.loads(
        (run.out / "provenance" / "pick-2.0-py3-none-any.whl.intoto.json").read_text())
    params = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert params["resolution"] == {"min_release_age_days": 7.0, "max_release_age_days": None}
    assert "2026-12-01" not in json.dumps(statement)
    # a day later in the window than the release: 3.0 is old enough
    later = run_bootstrap("pick", "--min-release-age", "1", "--as-of", AS_OF,
                          index=_index(tmp_path / "b"), out=tmp_path / "later")
    assert later.code == 0, later.stderr
    assert "pick-3.0-py3-none-any.whl" in later.wheels


def test_without_a_rule_the_newest_is_built_and_statements_are_unchanged(tmp_path,
                                                                        run_bootstrap):
    run = run_bootstrap("pick", index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert "pick-3.0-py3-none-any.whl" in run.wheels
    assert _order(run.out)["resolution"]["min_release_age_days"] is None
    assert _order(run.out)["resolution"]["held_back"] == []
    statement = json.loads(
        (run.out / "provenance" / "pick-3.0-py3-none-any.whl.intoto.json").read_text())
    assert "resolution" not in statement["predicate"]["buildDefinition"]["externalParameters"]


def test_a_package_exempted_in_the_settings_takes_its_newest_release(tmp_path, run_bootstrap):
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages.pick]\nmin-release-age = 0\n')
    run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF,
                        "--settings", str(settings), index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert run.wheels == ["helper-1.0-py3-none-any.whl", "pick-3.0-py3-none-any.whl"]
    entry = next(b for b in _order(run.out)["builds"] if b["name"] == "pick")
    assert entry["settings"]["settings"]["min-release-age"] == 0
    # a longer window of its own, for one package, without a global rule
    settings.write_text('[packages.pick]\nmin-release-age = 60\n')
    run = run_bootstrap("pick", "--as-of", AS_OF, "--settings", str(settings),
                        index=_index(tmp_path / "b"), out=tmp_path / "own")
    assert run.code == 0, run.stderr
    assert "pick-1.0-py3-none-any.whl" in run.wheels


def test_a_bad_min_release_age_setting_is_a_clear_error(tmp_path, run_bootstrap):
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages.pick]\nmin-release-age = "soon"\n')
    run = run_bootstrap("pick", "--settings", str(settings), index=_index(tmp_path))
    assert run.code == 1
    assert "packages.pick.min-release-age" in run.stderr and "Traceback" not in run.stderr


def test_the_error_names_the_releases_the_rule_held_back(tmp_path, run_bootstrap):
    run = run_bootstrap("pick>=3", "--min-release-age", "7", "--as-of", AS_OF,
                        index=_index(tmp_path))
    assert run.code == 1
    text = _text(run.stderr)
    assert "No source distribution of pick satisfies '>=3'" in text, text
    assert "held back 1 release of pick that would satisfy it: 3.0 (uploaded " \
        "2026-11-29T00:00:00Z, less than the minimum release age of 7 days" in text, text
    assert "min-release-age = 0" in text and "Traceback" not in text
    assert not (run.out / "wheels").exists() or run.wheels == []
    # the run record of the failed run names it too
    assert [(h["name"], h["version"]) for h in _order(run.out)["resolution"]["held_back"]] \
        == [("pick", "3.0")]


def test_an_html_index_gives_no_upload_time_a_warning_or_a_strict_error(tmp_path,
                                                                       run_bootstrap):
    index = _index(tmp_path, html_only=True)
    run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, index=index)
    assert run.code == 0, run.stderr
    assert "pick-3.0-py3-none-any.whl" in run.wheels  # nothing could be held back
    text = _text(run.stderr)
    assert "pick: the release-age rules cannot judge pick-3.0.tar.gz (the index gives no " \
        "upload time for it" in text, text
    assert text.count("pick: the release-age rules cannot judge") == 1
    strict = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, "--strict",
                           "--sandbox", "bubblewrap", index=index, out=tmp_path / "strict")
    assert strict.code == 1
    text = _text(strict.stderr)
    assert "cannot judge pick-3.0.tar.gz of pick 3.0" in text and "--strict refuses" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-30 12:00:00", "2026-13-01T00:00:00Z",
                                 "2026-11-30T00:00:00+02:00", 1764460800, None, ["x"]])
def test_a_malformed_upload_time_counts_as_missing(tmp_path, run_bootstrap, bad):
    times = {**TIMES, "pick-3.0.tar.gz": bad}
    index = _index(tmp_path, times=times)
    run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, index=index)
    assert run.code == 0, run.stderr
    assert "pick-3.0-py3-none-any.whl" in run.wheels
    text = _text(run.stderr)
    assert "cannot judge pick-3.0.tar.gz" in text, text
    if bad is not None:
        assert "is not a PEP 700 time" in text
    strict = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, "--strict",
                           index=index, out=tmp_path / "strict")
    assert strict.code == 1 and "cannot judge pick-3.0.tar.gz" in _text(strict.stderr)
    assert "Traceback" not in strict.stderr


def test_max_release_age_refuses_an_abandoned_release(tmp_path, run_bootstrap):
    pkgs = [Pkg("app", "1.0", deps=["old"]), Pkg("old", "1.0"), Pkg("old", "2.0")]
    times = {"app-1.0.tar.gz": "2026-11-01T00:00:00Z", "old-1.0.tar.gz": "2019-01-01T00:00:00Z",
             "old-2.0.tar.gz": "2020-06-01T00:00:00Z"}
    index = _index(tmp_path, pkgs, times)
    run = run_bootstrap("app", "--max-release-age", "365", "--as-of", AS_OF, index=index)
    assert run.code == 1
    text = _text(run.stderr)
    assert "The release-age rules held back 2 releases of old" in text, text
    assert "2.0 (abandoned: its last upload was 2020-06-01T00:00:00Z, more than " \
        "--max-release-age 365 days before 2026-12-01T00:00:00Z)" in text
    assert "app 1.0 -(install: old)-> ?" in text and "Traceback" not in text
    assert _order(run.out)["resolution"]["held_back"] == [
        {"name": "old", "version": v, "upload_time": t, "limit": "max-release-age",
         "days": 365.0}
        for v, t in (("1.0", "2019-01-01T00:00:00Z"), ("2.0", "2020-06-01T00:00:00Z"))]
    # a window long enough takes the newest
    ok = run_bootstrap("app", "--max-release-age", "3650", "--as-of", AS_OF, index=index,
                       out=tmp_path / "ok")
    assert ok.code == 0, ok.stderr
    assert "old-2.0-py3-none-any.whl" in ok.wheels
    assert _order(ok.out)["resolution"]["max_release_age_days"] == 3650


def test_the_run_record_lists_the_releases_the_rules_held_back_that_it_would_have_taken(
        tmp_path, run_bootstrap):
    pkgs = [Pkg("app", "1.0", deps=["lib<2.1", "old"]),
            Pkg("lib", "0.5"), Pkg("lib", "1.0"), Pkg("lib", "2.0"), Pkg("lib", "2.1"),
            Pkg("old", "1.0"), Pkg("old", "1.5"), Pkg("old", "1.8"), Pkg("old", "2.0")]
    times = {"app-1.0.tar.gz": "2025-01-01T00:00:00Z",
             "lib-0.5.tar.gz": "yesterday",  # malformed, but never chosen: no warning
             "lib-1.0.tar.gz": "2025-06-01T00:00:00Z",
             "lib-2.0.tar.gz": "2026-11-20T00:00:00Z",  # young by lib's own 60 days
             "lib-2.1.tar.gz": "2026-11-30T00:00:00Z",  # young, but app wants lib<2.1
             "old-1.0.tar.gz": "2019-01-01T00:00:00Z",  # abandoned, older than chosen
             "old-1.5.tar.gz": "2020-06-01T00:00:00Z",  # likewise
             "old-1.8.tar.gz": "2024-01-01T00:00:00Z",
             "old-2.0.tar.gz": "2026-11-29T00:00:00.5Z"}  # young by the global 7 days
    settings = tmp_path / "settings.toml"
    settings.write_text("[packages.lib]\nmin-release-age = 60\n")
    run = run_bootstrap("app", "--min-release-age", "7", "--max-release-age", "2000",
                        "--as-of", AS_OF, "--settings", str(settings),
                        index=_index(tmp_path, pkgs, times))
    assert run.code == 0, run.stderr
    assert run.wheels == ["app-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl",
                          "old-1.8-py3-none-any.whl"]
    assert "cannot judge" not in run.stderr
    # by name and version; each with the upload that decided and the limit it broke
    assert _order(run.out)["resolution"]["held_back"] == [
        {"name": "lib", "version": "2.0", "upload_time": "2026-11-20T00:00:00Z",
         "limit": "min-release-age", "days": 60.0},
        {"name": "old", "version": "2.0", "upload_time": "2026-11-29T00:00:00Z",
         "limit": "min-release-age", "days": 7.0}]


def test_a_bad_as_of_is_a_clear_error(tmp_path, run_bootstrap):
    run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", "next tuesday",
                        index=_index(tmp_path))
    assert run.code == 1 and "--as-of 'next tuesday' is not an ISO 8601 time" in run.stderr


class _Negotiating(SimpleHTTPRequestHandler):
    """A static index that serves a project's JSON page to a client that prefers it."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        accept = self.headers.get("Accept", "")
        if path.is_dir() and (path / "index.json").is_file() \
                and "application/vnd.pypi.simple.v1+json" in accept:
            body = (path / "index.json").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def test_an_http_index_is_asked_for_json_and_its_upload_times_are_read(tmp_path,
                                                                      run_bootstrap):
    folder = make_dists(PICK, tmp_path / "dists")
    write_json_index(folder, PICK, TIMES, html=True)  # HTML pages say nothing of times

    def handler(*args: object) -> _Negotiating:
        return _Negotiating(*args, directory=str(folder))  # type: ignore[arg-type]

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, index=url)
    finally:
        server.shutdown()
        server.server_close()
    assert run.code == 0, run.stderr
    assert "pick-2.0-py3-none-any.whl" in run.wheels
    assert "cannot judge" not in run.stderr


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``wheelstrap serve FOLDER`` on a free port of 127.0.0.1: its index URL."""
    proc = subprocess.Popen([sys.executable, "-m", "wheelstrap", "serve", str(folder),
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        yield proc.stderr.readline().split(" at ")[1].split(" ")[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _mtime_ns(when: str) -> int:
    t = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return int(t.replace(microsecond=0).timestamp()) * 1_000_000_000 + t.microsecond * 1000


def test_wheelstrap_serve_gives_upload_times_that_the_rules_judge(tmp_path, run_bootstrap):
    folder = make_dists(PICK, tmp_path / "dists")
    for filename, when in TIMES.items():  # when each sdist was put into the folder
        ns = _mtime_ns(str(when))
        os.utime(folder / filename, ns=(ns, ns))
    with _served(folder) as url:
        page = httpx.get(url + "pick/", headers={"Accept": JSON_TYPE}).json()
        run = run_bootstrap("pick", "--min-release-age", "7", "--as-of", AS_OF, index=url)
    # PEP 700 (API 1.1): versions, and each file's size and upload time (its mtime, UTC)
    assert page["meta"]["api-version"] == "1.1"
    assert page["versions"] == ["1.0", "2.0", "3.0"]
    assert {f["filename"]: f["upload-time"] for f in page["files"]} == {
        "pick-1.0.tar.gz": "2025-01-01T00:00:00.000000Z",
        "pick-2.0.tar.gz": "2026-11-01T10:00:00.123456Z",
        "pick-3.0.tar.gz": "2026-11-29T00:00:00.000000Z"}
    assert all(f["size"] == (folder / f["filename"]).stat().st_size for f in page["files"])
    # the rule is applied as on any index with upload times: 3.0 is too young, no warning
    assert run.code == 0, run.stderr
    assert run.wheels == ["helper-1.0-py3-none-any.whl", "pick-2.0-py3-none-any.whl"]
    assert "cannot judge" not in run.stderr and "no upload time" not in run.stderr
    # a bootstrap output: each wheel's upload time is when the run published it there
    wheel = run.out / "wheels" / "pick-2.0-py3-none-any.whl"
    with _served(run.out) as url:
        (listed,) = httpx.get(url + "pick/", headers={"Accept": JSON_TYPE}).json()["files"]
    ns = wheel.stat().st_mtime_ns
    published = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000)
    assert upload_time(ProjectFile(wheel.name, "", None, None, False,
                                   upload_time=listed["upload-time"])) == published
    assert listed["size"] == wheel.stat().st_size


# -- the pure parts ----------------------------------------------------------------------

def _file(name: str, when: str | None) -> ProjectFile:
    return ProjectFile(name, f"https://x/{name}", None, None, False, upload_time=when)


def test_upload_times_are_read_as_pep_700_writes_them():
    assert upload_time(_file("a-1.tar.gz", "2026-11-01T10:00:00Z")) == \
        datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert upload_time(_file("a-1.tar.gz", "2026-11-01T10:00:00.5Z")) == \
        datetime(2026, 11, 1, 10, 0, 0, 500000, tzinfo=UTC)
    for bad in (None, "", "2026-11-01", "2026-11-01T10:00:00", "2026-02-30T00:00:00Z",
                "2026-11-01T10:00:00.1234567Z", "٢٠٢٦-11-01T10:00:00Z"):
        assert upload_time(_file("a-1.tar.gz", bad)) is None, bad


def test_json_pages_keep_any_upload_time_for_the_rules_to_judge():
    page = parse_json("a", "https://x/simple/a/", {
        "meta": {"api-version": "1.1"}, "name": "a", "files": [
            {"filename": f"a-{i}.tar.gz", "url": f"a-{i}.tar.gz", "hashes": {},
             "upload-time": value}
            for i, value in enumerate(["2026-11-01T10:00:00Z", 5, {"x": 1}, None])]})
    assert [f.upload_time for f in page.files] == ["2026-11-01T10:00:00Z", "5", '{"x": 1}',
                                                   None]


def test_the_rule_judges_each_release_and_keeps_an_older_file_of_it():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    page = ProjectPage("a", (  # type: ignore[arg-type]
        _file("a-1.0.tar.gz", "2026-01-01T00:00:00Z"),
        _file("a-2.0.zip", "2026-11-01T00:00:00Z"),
        _file("a-2.0.tar.gz", "2026-11-30T00:00:00Z"),  # a late second sdist of 2.0
        _file("a-3.0.tar.gz", "2026-11-30T00:00:00Z"),
        _file("a-4.0.tar.gz", None)))
    verdict = apply_rule(page, AgeRule(now, min_days=7))
    assert [f.filename for f in verdict.page.files] == ["a-1.0.tar.gz", "a-2.0.zip",
                                                        "a-4.0.tar.gz"]
    assert [h.version for h in verdict.held] == [Version("3.0")]
    assert verdict.held[0].to_json("a") == {
        "name": "a", "version": "3.0", "upload_time": "2026-11-30T00:00:00Z",
        "limit": "min-release-age", "days": 7}
    assert verdict.untimed == {"a-4.0.tar.gz"}
    # a package's own minimum age, release by release
    verdict = apply_rule(page, AgeRule(now, min_days=7),
                         lambda v: 0 if v == Version("3.0") else None)
    assert "a-3.0.tar.gz" in [f.filename for f in verdict.page.files]
    # no rule at all: nothing judged, nothing reported
    verdict = apply_rule(page, AgeRule(now))
    assert verdict.page == page and not verdict.held and not verdict.untimed


def test_remembered_pins_do_not_bypass_the_rule_and_max_age_runs_are_never_unchanged(
        tmp_path, run_bootstrap):
    index = _index(tmp_path)
    out = tmp_path / "out"
    first = run_bootstrap("pick==3.0", index=index, out=out)
    assert first.code == 0, first.stderr
    # the pin is remembered from the run without a rule, but the rule still judges it
    held = run_bootstrap("pick==3.0", "--min-release-age", "7", "--as-of", AS_OF,
                         index=index, out=out)
    assert held.code == 1 and "held back 1 release of pick" in _text(held.stderr)
    # a fully pinned run under a minimum age may be found unchanged the next time
    for expect in (False, True):
        run = run_bootstrap("pick==1.0", "--min-release-age", "7", "--as-of", AS_OF,
                            index=index, out=out)
        assert run.code == 0, run.stderr
        assert ("nothing changed" in run.result.output + run.stderr) is expect
    # ... but not under a maximum age: the same release may be refused later
    for _ in range(2):
        run = run_bootstrap("pick==1.0", "--max-release-age", "3650", "--as-of", AS_OF,
                            index=index, out=out)
        assert run.code == 0, run.stderr
        assert "nothing changed" not in run.result.output + run.stderr
