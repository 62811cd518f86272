"""Git sources: ``source = { git, rev, ref }`` in settings and ``name @ git+URL@REV``
requirements, from a local repository (file://) made by the test: the commit's sdist is
made by the project's own backend (build_sdist), then built as usual, recorded in
provenance by commit, and reused by commit."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scenario import Pkg, make_dists, write_static_index

COMMIT_TIME = 1710000000


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": f"@{COMMIT_TIME} +0000",
           "GIT_COMMITTER_DATE": f"@{COMMIT_TIME} +0000"}
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
         "-c", "init.defaultBranch=main", *args],
        cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _repo(tmp_path: Path, pkg: Pkg) -> tuple[Path, str]:
    """A repository holding ``pkg`` (tiny in-tree backend), tagged v<version>; its
    path and the commit."""
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    for rel, text in pkg.tree().items():
        if rel == "PKG-INFO":  # a checkout has none: build_sdist writes it
            continue
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "tag", f"v{pkg.version}")
    return repo, _git(repo, "rev-parse", "HEAD")


def _index(tmp_path: Path) -> str:
    pkgs = [Pkg("plain", "1.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    return write_static_index(folder, pkgs).as_uri()


def _settings(tmp_path: Path, url: str, commit: str, ref: str | None = None) -> Path:
    ref_part = f', ref = "{ref}"' if ref else ""
    path = tmp_path / "settings.toml"
    path.write_text(f'[packages."gitpkg==1.0"]\n'
                    f'source = {{ git = "{url}", rev = "{commit}"{ref_part} }}\n')
    return path


def _events(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_settings_git_source_builds_records_and_reuses(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0", deps=["plain"]))
    index = _index(tmp_path)
    settings = _settings(tmp_path, repo.as_uri(), commit, ref="v1.0")
    run = run_bootstrap("gitpkg", "--settings", str(settings), "-v", index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-1.0-py3-none-any.whl", "plain-1.0-py3-none-any.whl"]
    order = {b["name"]: b for b in json.loads((run.out / "build-order.json").read_text())
             ["builds"]}
    made = order["gitpkg"]
    assert made["sdist_url"] == f"git+{repo.as_uri()}@{commit}"
    assert made["source_date_epoch"] == COMMIT_TIME
    assert (run.out / "sdists" / made["sdist"]).is_file()
    # two distinct steps: the commit's tree is fetched, then the sdist made from it
    steps = [(e["event"], e.get("phase")) for e in _events(run.out)
             if e.get("node") == "gitpkg 1.0" and e["event"] != "discovered"]
    assert steps[:4] == [("downloaded", None), ("started", "sdist"), ("finished", "sdist"),
                         ("sdist-made", None)]
    assert [s for s in steps if s[0] in ("downloaded", "sdist-made")] == [
        ("downloaded", None), ("sdist-made", None)]
    (tree,) = [e for e in _events(run.out) if e["event"] == "downloaded"
               and e["node"] == "gitpkg 1.0"]
    assert tree["git"] == commit
    (sdist,) = [e for e in _events(run.out) if e["event"] == "sdist-made"]
    assert (sdist["sdist"], sdist["sha256"]) == (made["sdist"], made["sdist_sha256"])
    lines = run.stderr.splitlines()
    assert [line for line in lines if "fetch gitpkg" in line] == ["wheelstrap: fetch gitpkg 1.0"]
    assert [line.split(" in ")[0] for line in lines if "fetched gitpkg" in line] == [
        f"wheelstrap: fetched gitpkg 1.0 (git commit {commit[:12]})"]
    # provenance: the repository and commit as the source, beside the sdist made from it
    statement = json.loads(
        (run.out / "provenance" / "gitpkg-1.0-py3-none-any.whl.intoto.json").read_text())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"uri": f"git+{repo.as_uri()}@{commit}", "digest": {"gitCommit": commit},
            "annotations": {"role": "source"}} in deps
    assert any(d.get("digest") == {"sha256": made["sdist_sha256"]} for d in deps)
    # a warm run: keyed by the commit, it needs neither the repository nor build_sdist
    shutil.move(repo, tmp_path / "gone")
    again = run_bootstrap("gitpkg", "--settings", str(settings), index=index)
    assert again.code == 0, again.stderr
    order = json.loads((again.out / "build-order.json").read_text())["builds"]
    assert all(b["reused"] for b in order)
    assert not any(e.get("phase") == "sdist" for e in _events(again.out))


def test_requirement_by_commit_on_the_command_line_and_in_a_file(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    index = _index(tmp_path)
    req = f"gitpkg @ git+{repo.as_uri()}@{commit}"
    run = run_bootstrap(req, "--strict", index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-1.0-py3-none-any.whl"]
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(req + "\n")
    other = run_bootstrap("-r", str(reqs), index=index, out=tmp_path / "out2")
    assert other.code == 0, other.stderr
    assert other.wheels == ["gitpkg-1.0-py3-none-any.whl"]


def test_a_branch_is_resolved_and_recorded_but_refused_by_strict(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    index = _index(tmp_path)
    req = f"gitpkg @ git+{repo.as_uri()}@main"
    strict = run_bootstrap(req, "--strict", index=index)
    assert strict.code == 1 and "--strict" in strict.stderr
    run = run_bootstrap(req, index=index)
    assert run.code == 0, run.stderr
    assert commit in " ".join(run.stderr.split())  # the warning names the commit built
    order = json.loads((run.out / "build-order.json").read_text())["builds"]
    assert order[0]["sdist_url"] == f"git+{repo.as_uri()}@{commit}"


def test_a_tag_that_names_another_commit_fails(tmp_path, run_bootstrap):
    repo, first = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    (repo / "NEWS").write_text("moved\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "second")
    _git(repo, "tag", "-f", "v1.0")  # the tag moves to the second commit
    second = _git(repo, "rev-parse", "HEAD")
    index = _index(tmp_path)
    run = run_bootstrap("gitpkg", "--settings",
                        str(_settings(tmp_path, repo.as_uri(), first, ref="v1.0")), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert first in err and second in err and "v1.0" in err
    assert "Traceback" not in run.stderr and run.wheels == []


def test_a_revision_that_does_not_exist_fails_clearly(tmp_path, run_bootstrap):
    repo, _ = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    index = _index(tmp_path)
    missing = "0123456789abcdef0123456789abcdef01234567"
    by_commit = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@{missing}", index=index)
    assert by_commit.code == 1
    assert f"has no commit {missing}" in " ".join(by_commit.stderr.split())
    by_name = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@no-such-branch", index=index)
    assert by_name.code == 1
    assert "no branch or tag 'no-such-branch'" in " ".join(by_name.stderr.split())
    in_settings = run_bootstrap("gitpkg", "--settings",
                                str(_settings(tmp_path, repo.as_uri(), missing)), index=index)
    assert in_settings.code == 1
    assert f"has no commit {missing}" in " ".join(in_settings.stderr.split())
    for r in (by_commit, by_name, in_settings):
        assert "Traceback" not in r.stderr and r.wheels == []


def test_a_lock_entry_locked_to_a_commit_is_made_from_it(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    index = _index(tmp_path)
    for version_line in ('version = "1.0"\n', ""):  # with the version, and without
        lock = tmp_path / "pylock.toml"
        lock.write_text('lock-version = "1.0"\ncreated-by = "test"\n[[packages]]\n'
                        f'name = "gitpkg"\n{version_line}'
                        f'vcs = {{ type = "git", url = "{repo.as_uri()}", '
                        f'commit-id = "{commit}" }}\n')
        out = tmp_path / f"out{len(version_line)}"
        run = run_bootstrap("-r", str(lock), index=index, out=out)
        assert run.code == 0, run.stderr
        assert run.wheels == ["gitpkg-1.0-py3-none-any.whl"]
        order = json.loads((out / "build-order.json").read_text())["builds"]
        assert order[0]["sdist_url"] == f"git+{repo.as_uri()}@{commit}"


def test_settings_git_source_is_checked_before_anything_runs(tmp_path, run_bootstrap):
    index = _index(tmp_path)
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages."gitpkg==1.0"]\n'
                        'source = { git = "ftp://host/repo", rev = "main", tag = "x" }\n'
                        '[packages.other]\n'
                        f'source = {{ git = "https://host/repo", rev = "{"a" * 40}" }}\n')
    run = run_bootstrap("gitpkg", "--settings", str(settings), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "source.tag: unknown key" in err
    assert "source.rev: is required: the full commit id" in err
    assert "is not an https://" in err
    assert "packages.other.source: replaces one release's sdist" in err
    assert not (run.out / "wheels").exists() or run.wheels == []


def _dynamic(tmp_path: Path, tag: str | None) -> tuple[Path, str]:
    """A repository of gitpkg whose version is dynamic (setuptools-scm's way), its one
    commit tagged ``tag`` (None: not tagged)."""
    pkg = Pkg("gitpkg", "1.0")
    dynamic = pkg.pyproject().replace('version = "1.0"', 'dynamic = ["version"]')
    pkg.extra_files = {"pyproject.toml": dynamic}
    repo, commit = _repo(tmp_path, pkg)
    _git(repo, "tag", "-d", "v1.0")
    if tag is not None:
        _git(repo, "tag", "-a", "-m", "release", tag)  # annotated, as releases often are
    return repo, commit


def test_a_dynamic_version_is_the_version_a_tag_at_the_commit_names(tmp_path, run_bootstrap):
    """The tree of a project whose version comes from git (setuptools-scm) has no .git:
    a direct reference to a commit that a version tag points at builds that version, and
    build_sdist is told it; a settings table that pins the same commit still wins."""
    repo, commit = _dynamic(tmp_path, "v2.1.0")
    index = _index(tmp_path)
    req = f"gitpkg @ git+{repo.as_uri()}@{commit}"
    run = run_bootstrap(req, index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-2.1.0-py3-none-any.whl"]
    order = json.loads((run.out / "build-order.json").read_text())["builds"]
    assert order[0]["sdist"] == "gitpkg-2.1.0.tar.gz"
    # named by the tag itself: the same
    by_tag = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@v2.1.0", index=index,
                           out=tmp_path / "bytag")
    assert by_tag.code == 0, by_tag.stderr
    assert by_tag.wheels == ["gitpkg-2.1.0-py3-none-any.whl"]
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[packages."gitpkg==2.5"]\n'
                        f'source = {{ git = "{repo.as_uri()}", rev = "{commit}" }}\n')
    pinned = run_bootstrap(req, "--settings", str(settings), index=index,
                           out=tmp_path / "pinned")
    assert pinned.code == 0, pinned.stderr
    assert pinned.wheels == ["gitpkg-2.5-py3-none-any.whl"]


def test_a_dynamic_version_without_a_version_tag_is_a_clear_error(tmp_path, run_bootstrap):
    index = _index(tmp_path)
    for n, tag in enumerate((None, "nightly")):
        repo, commit = _dynamic(tmp_path / str(n), tag)
        run = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@{commit}", index=index,
                            out=tmp_path / f"out{n}")
        assert run.code == 1
        err = " ".join(run.stderr.split())
        assert "is not stated in the [project] table" in err and commit in err
        assert ("no tag points at it" in err) if tag is None else \
            ("the tags at it, 'nightly', name no PEP 440 version" in err)
        assert 'packages."gitpkg==V"' in err and "Traceback" not in run.stderr
        assert run.wheels == []
    # the settings table form still works for an untagged commit
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[packages."gitpkg==2.5"]\n'
                        f'source = {{ git = "{repo.as_uri()}", rev = "{commit}" }}\n')
    run = run_bootstrap("gitpkg==2.5", "--settings", str(settings), index=index,
                        out=tmp_path / "out2")
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-2.5-py3-none-any.whl"]


def test_a_static_version_wins_over_a_tag_that_disagrees(tmp_path, run_bootstrap):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    _git(repo, "tag", "-d", "v1.0")
    _git(repo, "tag", "v3.0")
    run = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@{commit}", index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-1.0-py3-none-any.whl"]
    err = " ".join(run.stderr.split())
    assert "states the version 1.0, and the commit is tagged 'v3.0'; 1.0 is built" in err


def test_git_references_parse_or_fail_as_user_errors():
    from wheelstrap.errors import UserInputError
    from wheelstrap.index.git import GitReference, parse_reference

    assert parse_reference("git+https://h/r.git@v1#egg=x") == GitReference("https://h/r.git",
                                                                          "v1")
    assert parse_reference("git+ssh://git@h/r") == GitReference("ssh://git@h/r", None)
    for bad in ("git+http://[::1/r@abc", "git+https://h/r@", "git+ftp://h/r@a",
                "git+https://h/r@a#subdirectory=s", "git+ext::sh -c x"):
        with pytest.raises(UserInputError):
            parse_reference(bad)


TOKEN = "s3cr3t-t0ken-4f1d"


@pytest.fixture
def authed_git(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Serve bare copies of repositories over git's dumb HTTP protocol from 127.0.0.1,
    to a client that authenticates as user 'me' with TOKEN (Basic); the base URL, without
    credentials."""
    root = tmp_path / "served"
    root.mkdir()
    good = "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != good:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(repo: Path) -> str:
        bare = root / "repo.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
        subprocess.run(["git", "update-server-info"], cwd=bare, check=True)
        return f"http://127.0.0.1:{server.server_address[1]}/repo.git"

    yield publish
    server.shutdown()
    server.server_close()


def _nowhere(out: Path, *texts: str) -> None:
    """No file under ``out`` holds TOKEN, and no text either."""
    for text in texts:
        assert TOKEN not in text
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_credentials_in_a_git_url_reach_the_fetch_and_nothing_else(
        tmp_path, run_bootstrap, authed_git):
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    public = authed_git(repo)
    secret = public.replace("http://", f"http://me:{TOKEN}@")
    index = _index(tmp_path)
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[packages."gitpkg==1.0"]\n'
                        f'source = {{ git = "{secret}", rev = "{commit}" }}\n')
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\ncreated-by = "test"\n[[packages]]\n'
                    f'name = "gitpkg"\nvcs = {{ type = "git", url = "{secret}", '
                    f'commit-id = "{commit}" }}\n')
    for n, args in enumerate([(f"gitpkg @ git+{secret}@{commit}",),
                              (f"gitpkg @ git+{secret}@main",),
                              ("gitpkg", "--settings", str(settings)),
                              ("-r", str(lock))]):
        out = tmp_path / f"out{n}"
        run = run_bootstrap(*args, "-v", index=index, out=out)
        assert run.code == 0, run.stderr
        assert run.wheels == ["gitpkg-1.0-py3-none-any.whl"]
        builds = json.loads((out / "build-order.json").read_text())["builds"]
        assert builds[0]["sdist_url"] == f"git+{public}@{commit}"
        statement = (out / "provenance" / "gitpkg-1.0-py3-none-any.whl.intoto.json")
        assert f"git+{public}@{commit}" in statement.read_text()
        _nowhere(out, run.result.output, run.stderr)
    # a wrong token: refused by the server; the message names the repository, not the token
    wrong = public.replace("http://", f"http://me:{TOKEN}-wrong@")
    bad = run_bootstrap(f"gitpkg @ git+{wrong}@{commit}", index=index, out=tmp_path / "bad")
    assert bad.code == 1
    assert public in " ".join(bad.stderr.split()) and "Traceback" not in bad.stderr
    _nowhere(tmp_path / "bad", bad.result.output, bad.stderr)
    # a malformed requirement or URL: the message quotes it without the credentials
    for req in (f"gitpkg @ git+{secret}@", f"gitpkg @@ git+{secret}@{commit}",
                f"gitpkg @ git+{secret}?x=1@{commit}"):
        refused = run_bootstrap(req, index=index, out=tmp_path / "refused")
        assert refused.code == 1 and "Traceback" not in refused.stderr
        _nowhere(tmp_path / "refused", refused.result.output, refused.stderr)


def test_public_url_and_scrub():
    from wheelstrap.index.git import GitSource
    from wheelstrap.model.urls import public_url, scrub

    assert public_url("https://me:tok@h/r.git") == "https://h/r.git"
    assert public_url("https://tok@h:8443/r") == "https://h:8443/r"
    assert public_url("https://h/r?private_token=tok") == "https://h/r"
    assert public_url("ssh://git@h/r") == "ssh://git@h/r"  # a user name, no secret
    assert public_url("ssh://git:pw@h/r") == "ssh://h/r"
    assert scrub("fatal: 'https://me:tok@h/r' and http://x@y/") == \
        "fatal: 'https://h/r' and http://y/"
    source = GitSource.at("https://me:tok@h/r", "a" * 40)
    assert source.url == "https://h/r" and source.remote == "https://me:tok@h/r"
    assert "tok" not in repr(source) and "tok" not in source.uri
    assert source == GitSource.at("https://h/r", "a" * 40)


def test_git_sources_and_hash_checking_mode_do_not_go_together(tmp_path, run_bootstrap):
    """As pip refuses VCS requirements under --hash: an sdist made from a commit has no
    hash to pin beforehand.  Refused before anything is fetched or built."""
    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0"))
    index = _index(tmp_path)
    digest = hashlib.sha256((tmp_path / "dists" / "plain-1.0.tar.gz").read_bytes()).hexdigest()
    reqs = tmp_path / "hashed.txt"
    reqs.write_text(f"plain==1.0 --hash=sha256:{digest}\n")
    # in the same file, the git line is refused for having no --hash; given apart, it is
    # refused for what it is
    run = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@{commit}", "-r", str(reqs),
                        index=index)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "hash-checking mode" in run.stderr and "gitpkg" in run.stderr
    assert not list(run.out.glob("wheels/*.whl"))
    settings = _settings(tmp_path, repo.as_uri(), commit)
    by_settings = run_bootstrap("-r", str(reqs), "--settings", str(settings), index=index,
                                out=tmp_path / "out2")
    assert by_settings.code == 1 and "gitpkg" in by_settings.stderr


def test_a_rebuild_builds_the_commit_a_branch_named_at_the_run(tmp_path, run_bootstrap):
    """``gitpkg @ git+URL@main``: the run builds main's commit and records the requirement
    by it (main kept in git_refs); main then moves, and ``affected --rebuild`` (its
    build requirement, plain 1.0, is the culprit) builds the same commit, not main's new
    one."""
    from click.testing import CliRunner

    from wheelstrap.ui.cli import main as cli

    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0", build_requires=["plain"]))
    pkgs = [Pkg("plain", "1.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    index = write_static_index(folder, pkgs).as_uri()
    run = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@main", index=index)
    assert run.code == 0, run.stderr
    doc = json.loads((run.out / "build-order.json").read_text())
    recorded = doc["invocation"]
    assert recorded["requirements"] == [f"gitpkg @ git+{repo.as_uri()}@{commit}"]
    assert recorded["git_refs"] == [{"name": "gitpkg", "ref": "main", "commit": commit}]

    (repo / "gitpkg" / "__init__.py").write_text("NAME = 'main moved on'\n")
    _git(repo, "commit", "-q", "-am", "second")
    moved = _git(repo, "rev-parse", "HEAD")
    assert moved != commit
    pkgs.append(Pkg("plain", "2.0"))
    make_dists(pkgs[1:], folder)
    write_static_index(folder, pkgs)
    rebuilt = CliRunner().invoke(cli, ["affected", str(run.out), "plain==1.0", "--rebuild",
                                       "--no-hold", "-q"])
    assert rebuilt.exit_code == 0, rebuilt.output
    doc = json.loads((run.out / "build-order.json").read_text())
    builds = {b["name"]: b for b in doc["builds"]}
    assert builds["plain"]["version"] == "2.0"  # the rebuild did run
    assert builds["gitpkg"]["sdist_url"] == f"git+{repo.as_uri()}@{commit}"
    assert moved not in json.dumps(doc)
    # the rebuild's own record keeps the commit, and the branch it came from
    assert doc["invocation"]["requirements"] == recorded["requirements"]
    assert doc["invocation"]["git_refs"] == recorded["git_refs"]


def test_build_sdist_gets_what_get_requires_for_build_sdist_asks_for(tmp_path, run_bootstrap):
    """A git tree whose backend's get_requires_for_build_sdist asks for sdhelper (and
    whose build_sdist fails without it): sdhelper is built and installed first, then the
    sdist is made; the wheel's build needs no sdhelper."""
    pkg = Pkg("gitpkg", "1.0")
    repo, _ = _repo(tmp_path, pkg)
    with open(repo / "pyproject.toml", "a") as fh:  # [tool.tiny] is its last table
        fh.write('sdist-requires = ["sdhelper"]\n')
    _git(repo, "commit", "-q", "-am", "sdist-requires")
    commit = _git(repo, "rev-parse", "HEAD")
    pkgs = [Pkg("sdhelper", "1.0")]
    index = write_static_index(make_dists(pkgs, tmp_path / "dists"), pkgs).as_uri()
    run = run_bootstrap(f"gitpkg @ git+{repo.as_uri()}@{commit}", index=index)
    assert run.code == 0, run.stderr
    assert run.wheels == ["gitpkg-1.0-py3-none-any.whl", "sdhelper-1.0-py3-none-any.whl"]
    sdist_tasks = [e for e in _events(run.out)
                   if e.get("event") == "finished" and e.get("phase") == "sdist"]
    assert len(sdist_tasks) == 2  # asked, then made with sdhelper installed
    builds = {b["name"]: b for b in json.loads((run.out / "build-order.json").read_text())
              ["builds"]}
    assert [w for w in builds["gitpkg"]["build_env"] if "sdhelper" in str(w)] == []
