"""Git sources: a package built from one commit of a git repository.

Two ways to name one: ``source = { git = "URL", rev = "<40-hex commit>" }`` in a settings
table that pins the version (see :mod:`wheelstrap.config.settings`), or a PEP 508 direct
reference ``name @ git+URL@REV`` in the requirements.  :class:`GitSource` is the value;
:class:`GitRepo` does the fetching with the ``git`` program, on the coordinator's machine
and never inside a build: the network is used when the commit is fetched, and only then.

Fetching is keyed by the commit: a bare repository per URL under the run's state folder
receives the one commit (``git fetch --depth 1 URL COMMIT``; the whole repository when the
server refuses a fetch by commit), its tree is packed with ``git archive`` into a source
archive, and that archive goes to the project's own backend (``build_sdist``) in the
sandbox (see the planner).  A branch or tag name (``ref``) is looked up with
``git ls-remote`` and must name the pinned commit.

Credentials written into a URL (``https://user:token@host/repo``) are used by the fetch
and nowhere else: :attr:`GitSource.url`, which provenance, build-order.json, events, logs
and messages show, is the URL without them (:func:`public_url`), and the URL to fetch
from is kept apart (:attr:`GitSource.remote`, never shown, never compared).  What ``git``
writes to stderr is scrubbed too (:func:`scrub`) before a message quotes it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import SourceError, UserInputError
from wheelstrap.model.urls import public_url, scrub

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: Seconds one git command may take (a large repository over a slow link).
GIT_TIMEOUT = 1800
_SCHEMES = ("https", "http", "ssh", "git", "file")


def is_commit(rev: str) -> bool:
    """Whether ``rev`` is a full commit id (40 lowercase hex digits, SHA-1)."""
    return _COMMIT.match(rev) is not None


@dataclass(frozen=True, slots=True)
class GitSource:
    """Build from ``commit`` of the repository at ``url``; ``ref`` (a branch or tag name),
    when given, must resolve to that commit.  ``url`` holds no credentials (see
    :func:`public_url`); ``fetch_url``, when the URL as written had some, is that URL:
    only the fetch uses it.  Make one with :meth:`at`."""

    url: str
    commit: str
    ref: str | None = None
    fetch_url: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def at(cls, url: str, commit: str, ref: str | None = None) -> GitSource:
        """The source at ``url`` as written (credentials and all)."""
        shown = public_url(url)
        return cls(shown, commit, ref, None if shown == url else url)

    @property
    def remote(self) -> str:
        """The URL to fetch from (credentials included: never show it)."""
        return self.fetch_url or self.url

    @property
    def uri(self) -> str:
        """``git+URL@COMMIT``: how provenance names it (SLSA resolvedDependencies)."""
        return f"git+{self.url}@{self.commit}"


@dataclass(frozen=True, slots=True)
class GitReference:
    """A ``git+URL@REV`` direct reference as written (``rev`` None: the default branch;
    ``url`` with its credentials, if any)."""

    url: str
    rev: str | None


def valid_ref(ref: str) -> bool:
    """Whether ``ref`` can be a branch or tag name (or a commit id) as git takes it on a
    command line: never one that begins with ``-`` (an option), nor with a control
    character, a space or one of ``~^:?*[\\`` (``git check-ref-format``)."""
    return bool(ref) and not ref.startswith("-") and not any(
        c <= " " or c == "\x7f" or c in "~^:?*[\\" for c in ref)


def check_url(url: str) -> str | None:
    """What is wrong with a repository URL, or None."""
    if any(c < " " or c == "\x7f" for c in url):
        return f"{url!r} holds a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"{scrub(url)!r} is not a URL ({exc})"
    shown = public_url(url)
    if parts.scheme not in _SCHEMES:
        return f"{shown!r} is not an https://, http://, ssh://, git:// or file:// URL"
    if parts.scheme != "file" and not parts.netloc:
        return f"{shown!r} names no host"
    if (parts.hostname or "").startswith("-") or (parts.username or "").startswith("-"):
        # ssh://-oProxyCommand=...: ssh would take the host or user for an option
        return f"{shown!r} has a host or user name that begins with '-'"
    if parts.query or parts.fragment:
        return f"{shown!r} has a query or fragment, which a git source does not take"
    return None


def parse_reference(url: str) -> GitReference:
    """``git+URL[@REV]`` (PEP 508 / pip's VCS form) -> GitReference; UserInputError when it
    is not one.  The ``@`` of a user name (``ssh://git@host/...``) is not a rev."""
    if not url.startswith("git+"):
        raise UserInputError(f"{public_url(url)!r} is not a git+URL reference.")
    rest = url[4:]
    problem = check_url(rest.partition("#")[0])
    if problem is not None and "is not a URL" in problem:
        raise UserInputError(problem + ".", hint="Write git+https://host/repo@COMMIT.")
    parts = urlsplit(rest)
    path, rev = parts.path, None
    if "@" in path:
        path, rev = path.rsplit("@", 1)
        if not rev:
            raise UserInputError(f"{public_url(url)!r} ends in '@' without a revision.",
                                 hint="Write git+URL@COMMIT (40 hex digits).")
        if not valid_ref(rev):
            raise UserInputError(f"{url!r} names the revision {rev!r}, which is neither a "
                                 "commit id nor a branch or tag name.",
                                 hint="Write git+URL@COMMIT (40 hex digits).")
    if parts.fragment and not all(p.startswith("egg=") for p in parts.fragment.split("&")):
        raise UserInputError(
            f"{public_url(url)!r} has a '#' fragment other than egg= (such as "
            "subdirectory=); wheelstrap builds a project at the root of a repository only.",
            hint="Drop the fragment.")
    base = parts._replace(path=path, fragment="").geturl()
    problem = check_url(base)
    if problem is not None:
        raise UserInputError(problem + ".", hint="Write git+https://host/repo@COMMIT.")
    return GitReference(base, rev)


def public_requirement(req: Requirement) -> tuple[Requirement, tuple[str, str] | None]:
    """A ``name @ git+URL@REV`` requirement without the credentials of its URL, and
    (URL without them, URL with them) of the repository when it had some; any other
    requirement as it is."""
    if not req.url or not req.url.startswith("git+"):
        return req, None
    shown = "git+" + public_url(req.url[4:])
    if shown == req.url:
        return req, None
    full = parse_reference(req.url).url
    public = Requirement(str(req))
    public.url = shown
    return public, (public_url(full), full)


#: Every git command takes these first: only the transports a URL may name are allowed,
#: so that nothing a repository or a redirect says can reach ``ext::`` (which runs a
#: command) or another remote helper; ``ext`` and ``fd`` are named too, so that a
#: configuration file that allows them does not win over the general rule.
_SAFE_CONFIG = ("-c", "protocol.allow=never", "-c", "protocol.ext.allow=never",
                "-c", "protocol.fd.allow=never",
                *(x for p in _SCHEMES for x in ("-c", f"protocol.{p}.allow=always")))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"})
    return env


def git(args: list[str], *, cwd: Path | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[bytes]:
    """Run ``git`` (SourceError when it is missing, times out or fails with ``check``)."""
    exe = shutil.which("git")
    if exe is None:
        raise UserInputError(
            "A git source needs the 'git' program, which is not installed.",
            hint="Install it (Debian: apt-get install git).")
    try:
        proc = subprocess.run([exe, *_SAFE_CONFIG, *args], cwd=cwd, env=_env(),
                              capture_output=True,
                              timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git {args[0]} took longer than {GIT_TIMEOUT} s.") from exc
    if check and proc.returncode != 0:
        raise SourceError(f"git {' '.join(args[:2])} failed: {_stderr(proc)}")
    return proc


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The end of what git wrote to stderr, without credentials."""
    return scrub(proc.stderr.decode(errors="replace").strip())[-600:]


def ls_remote(url: str, ref: str) -> str | None:
    """The commit ``ref`` (a branch or tag name, or HEAD) names at ``url`` (credentials
    and all: messages show it without them); a tag is peeled to its commit; None when the
    repository has no such ref."""
    proc = git(["ls-remote", "--", url, ref, f"{ref}^{{}}"], check=False)
    if proc.returncode != 0:
        raise SourceError(
            f"The git repository {public_url(url)} cannot be read: {_stderr(proc)}",
            hint="Check the URL and that this machine can reach it.")
    found: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    wanted = [f"{ref}^{{}}", ref] if ref == "HEAD" else [
        f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref]
    for name in wanted:
        if name in found:
            if not is_commit(found[name]):  # a SHA-256 repository, or a broken answer
                raise SourceError(f"The git repository {url} names {found[name][:80]!r} for "
                                  f"{ref!r}, which is not a SHA-1 commit id.",
                                  hint="wheelstrap builds from SHA-1 repositories only.")
            return found[name]
    return None


def tags_at(url: str, commit: str) -> list[str]:
    """The names of the tags of the repository at ``url`` that point at ``commit`` (an
    annotated tag peeled to its commit), sorted: what ``git tag --points-at`` lists in a
    clone, read with ``git ls-remote --tags`` (the fetch of one commit brings no tags)."""
    proc = git(["ls-remote", "--tags", "--", url], check=False)
    if proc.returncode != 0:
        raise SourceError(
            f"The tags of the git repository {public_url(url)} cannot be read: "
            f"{_stderr(proc)}", hint="Check the URL and that this machine can reach it.")
    direct: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/"):]
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            direct[name] = sha
    return sorted(n for n, sha in direct.items() if peeled.get(n, sha) == commit)


def tag_version(tag: str) -> Version | None:
    """The PEP 440 version a tag names (``1.2.0``, ``v1.2.0``), or None."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return Version(text)
    except InvalidVersion:
        return None


#: one lock per bare repository: fetches of several versions from one URL run on the I/O
#: threads at once, and git does not share a shallow repository between two fetches
_REPO_LOCKS: dict[Path, threading.Lock] = {}
_REPO_LOCKS_GUARD = threading.Lock()


def _repo_lock(path: Path) -> threading.Lock:
    with _REPO_LOCKS_GUARD:
        return _REPO_LOCKS.setdefault(path, threading.Lock())


class GitRepo:
    """A bare repository under ``folder`` that holds the fetched commits of one
    repository (by its URL without credentials; they are passed to each fetch and
    stored nowhere: no remote is configured).  Its changes (a fetch, an archive) are
    made one at a time."""

    def __init__(self, folder: Path, source: GitSource) -> None:
        self.url = source.url
        self.remote = source.remote
        self.path = folder / (hashlib.sha256(self.url.encode()).hexdigest()[:24] + ".git")
        self._lock = _repo_lock(self.path)
        problem = check_url(self.remote)
        if problem is not None:  # every way in checks it; this is the last line
            raise UserInputError(scrub(problem) + ".",
                                 hint="Write git+https://host/repo@COMMIT.")

    @staticmethod
    def _check(commit: str) -> None:
        """A commit reaches git commands where an option could (``git show COMMIT``):
        only a full commit id does."""
        if not is_commit(commit):
            raise UserInputError(f"{commit!r} is not a full commit id (40 lowercase hex "
                                 "digits).", hint="Pin the commit by its full id.")

    def _has(self, commit: str) -> bool:
        self._check(commit)
        if not self.path.is_dir():
            return False
        return git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=self.path,
                   check=False).returncode == 0

    def fetch(self, commit: str) -> None:
        """Make ``commit`` present (network: this is the one place that fetches)."""
        with self._lock:
            self._fetch(commit)

    def _fetch(self, commit: str) -> None:
        if self._has(commit):
            return
        if not self.path.is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            git(["init", "--bare", "--quiet", str(self.path)])
        proc = git(["fetch", "--quiet", "--no-write-fetch-head", "--depth", "1", "--no-tags",
                    "--", self.remote, commit], cwd=self.path, check=False)
        if proc.returncode != 0 or not self._has(commit):
            # a server that refuses a fetch by commit id: take every branch and tag
            full = git(["fetch", "--quiet", "--no-write-fetch-head", "--tags", "--",
                        self.remote, "+refs/heads/*:refs/remotes/origin/*"], cwd=self.path,
                       check=False)
            if full.returncode != 0:
                raise SourceError(
                    f"The git repository {self.url} cannot be fetched: {_stderr(full)}",
                    hint="Check the URL and that this machine can reach it.")
        if not self._has(commit):
            raise SourceError(
                f"The git repository {self.url} has no commit {commit}.",
                hint="Pin a commit that exists there (git log in a clone of it lists them).")

    def commit_time(self, commit: str) -> int:
        self._check(commit)
        out = git(["show", "-s", "--format=%ct", "--end-of-options", commit],
                  cwd=self.path).stdout
        return int(out.decode().strip())

    def read(self, commit: str, path: str) -> bytes | None:
        """The bytes of ``path`` at ``commit``, or None when it has none."""
        self._check(commit)
        proc = git(["show", f"{commit}:{path}"], cwd=self.path, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def archive(self, commit: str, prefix: str, dest: Path) -> Path:
        """The commit's tree as ``dest`` (a .tar.gz whose one folder is ``prefix``; member
        times are the commit's), written through a temporary file."""
        self._check(commit)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, tempfile.TemporaryDirectory(dir=dest.parent,
                                                     prefix=".archive-") as work:
            return self._archive(commit, prefix, dest, Path(work))

    def _archive(self, commit: str, prefix: str, dest: Path, work: Path) -> Path:
        tar = work / "tree.tar"
        try:
            with open(tar, "wb") as fh:
                proc = subprocess.run(
                    [shutil.which("git") or "git", *_SAFE_CONFIG, "archive", "--format=tar",
                     f"--prefix={prefix}/", commit], cwd=self.path, env=_env(), stdout=fh,
                    stderr=subprocess.PIPE, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise SourceError(f"git archive of {self.url} {commit} failed: {_stderr(proc)}")
            if not tarfile.is_tarfile(tar):
                raise SourceError(f"git archive of {self.url} {commit} wrote no tar archive.")
            part = work / "tree.tar.gz"
            with open(tar, "rb") as src, open(part, "wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                shutil.copyfileobj(src, gz)
            part.replace(dest)
        finally:
            tar.unlink(missing_ok=True)
        return dest
