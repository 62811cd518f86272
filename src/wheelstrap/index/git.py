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
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wheelstrap.errors import SourceError, UserInputError

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
    when given, must resolve to that commit."""

    url: str
    commit: str
    ref: str | None = None

    @property
    def uri(self) -> str:
        """``git+URL@COMMIT``: how provenance names it (SLSA resolvedDependencies)."""
        return f"git+{self.url}@{self.commit}"


@dataclass(frozen=True, slots=True)
class GitReference:
    """A ``git+URL@REV`` direct reference as written (``rev`` None: the default branch)."""

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
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in _SCHEMES:
        return f"{url!r} is not an https://, http://, ssh://, git:// or file:// URL"
    if parts.scheme != "file" and not parts.netloc:
        return f"{url!r} names no host"
    if (parts.hostname or "").startswith("-") or (parts.username or "").startswith("-"):
        # ssh://-oProxyCommand=...: ssh would take the host or user for an option
        return f"{url!r} has a host or user name that begins with '-'"
    if parts.query or parts.fragment:
        return f"{url!r} has a query or fragment, which a git source does not take"
    return None


def parse_reference(url: str) -> GitReference:
    """``git+URL[@REV]`` (PEP 508 / pip's VCS form) -> GitReference; UserInputError when it
    is not one.  The ``@`` of a user name (``ssh://git@host/...``) is not a rev."""
    if not url.startswith("git+"):
        raise UserInputError(f"{url!r} is not a git+URL reference.")
    rest = url[4:]
    problem = check_url(rest.partition("#")[0])
    if problem is not None and "is not a URL" in problem:
        raise UserInputError(problem + ".", hint="Write git+https://host/repo@COMMIT.")
    parts = urlsplit(rest)
    path, rev = parts.path, None
    if "@" in path:
        path, rev = path.rsplit("@", 1)
        if not rev:
            raise UserInputError(f"{url!r} ends in '@' without a revision.",
                                 hint="Write git+URL@COMMIT (40 hex digits).")
        if not valid_ref(rev):
            raise UserInputError(f"{url!r} names the revision {rev!r}, which is neither a "
                                 "commit id nor a branch or tag name.",
                                 hint="Write git+URL@COMMIT (40 hex digits).")
    if parts.fragment and not all(p.startswith("egg=") for p in parts.fragment.split("&")):
        raise UserInputError(
            f"{url!r} has a '#' fragment other than egg= (such as subdirectory=); wheelstrap "
            "builds a project at the root of a repository only.",
            hint="Drop the fragment.")
    base = parts._replace(path=path, fragment="").geturl()
    problem = check_url(base)
    if problem is not None:
        raise UserInputError(problem + ".", hint="Write git+https://host/repo@COMMIT.")
    return GitReference(base, rev)


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
        raise SourceError(f"git {' '.join(args[:2])} failed: "
                          f"{proc.stderr.decode(errors='replace').strip()[-600:]}")
    return proc


def ls_remote(url: str, ref: str) -> str | None:
    """The commit ``ref`` (a branch or tag name, or HEAD) names at ``url``; a tag is peeled
    to its commit; None when the repository has no such ref."""
    proc = git(["ls-remote", "--", url, ref, f"{ref}^{{}}"], check=False)
    if proc.returncode != 0:
        raise SourceError(
            f"The git repository {url} cannot be read: "
            f"{proc.stderr.decode(errors='replace').strip()[-600:]}",
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


class GitRepo:
    """A bare repository under ``folder`` that holds the fetched commits of one URL."""

    def __init__(self, folder: Path, url: str) -> None:
        problem = check_url(url)
        if problem is not None:  # every way in checks it; this is the last line
            raise UserInputError(problem + ".", hint="Write git+https://host/repo@COMMIT.")
        self.url = url
        self.path = folder / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")

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
        if self._has(commit):
            return
        if not self.path.is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            git(["init", "--bare", "--quiet", str(self.path)])
        proc = git(["fetch", "--quiet", "--depth", "1", "--no-tags", "--", self.url, commit],
                   cwd=self.path, check=False)
        if proc.returncode != 0 or not self._has(commit):
            # a server that refuses a fetch by commit id: take every branch and tag
            full = git(["fetch", "--quiet", "--tags", "--", self.url,
                        "+refs/heads/*:refs/remotes/origin/*"], cwd=self.path, check=False)
            if full.returncode != 0:
                raise SourceError(
                    f"The git repository {self.url} cannot be fetched: "
                    f"{full.stderr.decode(errors='replace').strip()[-600:]}",
                    hint="Check the URL and that this machine can reach it.")
        if not self._has(commit):
            raise SourceError(
                f"The git repository {self.url} has no commit {commit}.",
                hint="Pin a commit that exists there (git log in a clone of it lists them).")

    def commit_time(self, commit: str) -> int:
        self._check(commit)
        out = git(["show", "-s", "--format=%ct", commit], cwd=self.path).stdout
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
        tar = dest.with_name(dest.name + ".tar.part")
        try:
            with open(tar, "wb") as fh:
                proc = subprocess.run(
                    [shutil.which("git") or "git", *_SAFE_CONFIG, "archive", "--format=tar",
                     f"--prefix={prefix}/", commit], cwd=self.path, env=_env(), stdout=fh,
                    stderr=subprocess.PIPE, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise SourceError(f"git archive of {self.url} {commit} failed: "
                                  f"{proc.stderr.decode(errors='replace').strip()[-600:]}")
            if not tarfile.is_tarfile(tar):
                raise SourceError(f"git archive of {self.url} {commit} wrote no tar archive.")
            part = dest.with_name(dest.name + ".part")
            with open(tar, "rb") as src, open(part, "wb") as raw, \
                    gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                shutil.copyfileobj(src, gz)
            part.replace(dest)
        finally:
            tar.unlink(missing_ok=True)
        return dest
