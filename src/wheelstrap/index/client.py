"""Talking to a package index over http(s) or ``file://``, with retries."""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from wheelstrap.errors import IndexAccessError, SourceError
from wheelstrap.fsutil import (
    LimitExceeded,
    atomic_destination,
    chunks_of,
    copy_verified,
    open_regular,
)
from wheelstrap.index.simple import (
    ACCEPT,
    JSON_TYPE,
    MAX_PAGE_BYTES,
    ProjectPage,
    parse_html,
    parse_json_text,
)

if TYPE_CHECKING:
    import httpx

    from wheelstrap.index.reqfiles import AllowedHashes

DEFAULT_INDEX = "https://pypi.org/simple/"
#: Redirects followed for one request before giving up (a loop ends here too).
MAX_REDIRECTS = 10
#: The largest core metadata file read from an index (PEP 658); a real one is a few kB.
MAX_METADATA_BYTES = 1 << 20
#: Seconds one request may wait for the index across all its attempts (IndexClient's
#: ``request_deadline``): an index that accepts connections and never answers fails a
#: run in two minutes, not in five read timeouts and their backoff.
REQUEST_DEADLINE = 120.0


def import_httpx() -> ModuleType:
    """httpx and the HTTP core it sends requests with, imported (once) without httpx's
    command-line client.

    ``httpx/__init__`` imports its own CLI (``httpx._main``), which imports click, rich
    and pygments whenever they are installed, as they are here: a third of importing
    httpx, paid by every run, for a program wheelstrap never runs.  While httpx is
    imported, a stand-in module takes that CLI's place; it is gone again afterwards
    (should httpx import more than ``main`` from it, httpx falls back to its own
    stand-in)."""
    if "httpx" not in sys.modules:
        stand_in = ModuleType("httpx._main")

        def main() -> None:
            raise SystemExit("httpx's command-line client is not loaded by wheelstrap")

        stand_in.main = main  # type: ignore[attr-defined]
        placed = sys.modules.setdefault("httpx._main", stand_in) is stand_in
        try:
            import httpx  # noqa: F401
        finally:
            if placed and sys.modules.get("httpx._main") is stand_in:
                del sys.modules["httpx._main"]
    import httpcore  # noqa: F401 - httpx imports it only when its first client is made

    return sys.modules["httpx"]


class _Retry(Exception):
    """A failure worth another attempt (transport error, timeout, 5xx, deadline)."""


class _Unanswered(_Retry):
    """An attempt given up at the request's overall deadline, still waiting for the
    index to begin its answer."""


def file_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path))


def _scheme(url: str) -> str:
    try:
        return urlparse(url).scheme.lower()
    except ValueError:
        return ""


class IndexClient:
    """Fetches project pages and files.  Thread-safe; one instance per run.

    Every request has a connect timeout, a read timeout (the longest silence accepted
    from the server) and an overall ``deadline`` per attempt; redirects are followed up
    to :data:`MAX_REDIRECTS`.  Transport failures, timeouts, HTTP 5xx and 429 are
    retried with exponential backoff, within ``request_deadline`` seconds for the whole
    request: past it no attempt starts, and one still waiting for the index to begin
    answering is given up (a body that is arriving is not cut: the per-attempt limits
    bound it).  Every failure ends in an IndexAccessError (or a SourceError for a file
    whose hash is wrong) naming the URL."""

    def __init__(
        self,
        index_url: str = DEFAULT_INDEX,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
        connect_timeout: float = 30.0,
        deadline: float = 900.0,
        request_deadline: float = REQUEST_DEADLINE,
        max_page_bytes: int = MAX_PAGE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        scheme = _scheme(index_url)
        if scheme not in ("http", "https", "file"):
            from wheelstrap.errors import UserInputError

            raise UserInputError(
                f"The index URL {index_url!r} is not an http(s):// or file:// URL.",
                hint="Pass --index-url https://pypi.org/simple/ or file:///path/to/simple/.",
            )
        self.index_url = index_url if index_url.endswith("/") else index_url + "/"
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._deadline = deadline
        self._request_deadline = request_deadline
        self._max_page_bytes = max_page_bytes
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, created (and httpx imported) on first use: a run whose every
        version is pinned and known needs no network and pays nothing for it."""
        with self._lock:
            if self._client is None:
                httpx = import_httpx()
                timeout = httpx.Timeout(self._timeout, connect=self._connect_timeout)
                self._client = httpx.Client(timeout=timeout, follow_redirects=True,
                                            max_redirects=MAX_REDIRECTS,
                                            headers={"User-Agent": "wheelstrap"})
            return self._client

    def warm(self) -> None:
        """Make the HTTP client now, on a thread of its own, for a run that is about to
        ask the index: loading the certificate authorities takes tens of milliseconds
        (mostly outside the interpreter lock), which the first requests would otherwise
        wait for.  A failure here is left for the first request to meet and report."""
        if _scheme(self.index_url) not in ("http", "https") or self._client is not None:
            return

        def make() -> None:
            with contextlib.suppress(Exception):
                self._http  # noqa: B018 - made for its side effect

        self._warming = threading.Thread(target=make, name="wheelstrap-warm", daemon=True)
        self._warming.start()

    def close(self) -> None:
        if self._warming is not None:  # not left half-made (and importing) at exit
            self._warming.join(30)
            self._warming = None
        if self._client is not None:
            self._client.close()

    # -- generic retrying GET --------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str],
             consume: Callable[[httpx.Response, Iterator[bytes]], _T]) -> _T | None:
        """GET ``url`` and hand the response and its body chunks to ``consume``; None on
        HTTP 404/410.  ``consume`` runs once per attempt and may raise _Retry."""
        import httpx

        def once(cancelled: threading.Event, answered: threading.Event) -> _T | None:
            with self._http.stream("GET", url, headers=headers) as response:
                answered.set()
                status = response.status_code
                if status in (404, 410):
                    return None
                if status >= 500 or status == 429:
                    raise _Retry(f"HTTP {status}")
                if status >= 400:
                    raise IndexAccessError(
                        f"The index answered HTTP {status} for {url}.",
                        hint="Check --index-url (it must point at a simple repository "
                        "API root) and that the index lets you read it.")
                if status >= 300:  # a redirect without a usable Location
                    raise IndexAccessError(
                        f"The index answered HTTP {status} for {url} without a "
                        "redirect that could be followed.", hint=_INDEX_HINT)
                return consume(response, _chunks(response, cancelled))

        delay = self._backoff
        last = ""
        end = time.monotonic() + self._request_deadline
        attempts = 0
        out_of_time = False
        for attempt in range(self._retries + 1):
            attempts += 1
            try:
                return _within(self._deadline, once, end - time.monotonic())
            except _Unanswered as exc:
                last, out_of_time = str(exc), True
                break
            except _Retry as exc:
                last = str(exc)
            except httpx.TooManyRedirects as exc:
                raise IndexAccessError(
                    f"Fetching {url} was redirected more than {MAX_REDIRECTS} times (a "
                    f"redirect loop?): {exc}.", hint=_INDEX_HINT) from None
            except httpx.UnsupportedProtocol as exc:
                raise IndexAccessError(
                    f"Fetching {url} was redirected to a URL that is not http(s): {exc}.",
                    hint=_INDEX_HINT) from None
            except httpx.TimeoutException as exc:
                last = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                raise IndexAccessError(f"Fetching {url} failed: {type(exc).__name__}: {exc}.",
                                       hint=_INDEX_HINT) from None
            if attempt == self._retries:
                break
            if time.monotonic() + delay >= end:
                out_of_time = True
                break
            self._sleep(delay)
            delay *= 2
        if out_of_time:
            raise IndexAccessError(
                f"The index did not answer {url} within {self._request_deadline:g} s "
                f"({attempts} attempt{'s' if attempts > 1 else ''}; last error: {last}).",
                hint="Check that --index-url points at a working index and the network to "
                "it, then run again; finished work is kept.")
        raise IndexAccessError(
            f"Could not fetch {url} after {attempts} attempts (last error: {last}).",
            hint="Check the network and --index-url, then run again; finished work is kept.",
        )

    # -- project pages ---------------------------------------------------------------

    def project_page(self, name: str) -> ProjectPage | None:
        """The index's page for ``name``, or None when the index has no such project."""
        cname = canonicalize_name(name)
        url = f"{self.index_url}{cname}/"
        if url.startswith("file:"):
            return self._file_page(cname, url)
        limit = self._max_page_bytes

        def read(response: httpx.Response, chunks: Iterator[bytes]
                 ) -> tuple[str, str, str | None, bytes]:
            body = _capped(chunks, limit, f"The index page {url}")
            ctype = response.headers.get("content-type", "")
            return str(response.url), ctype, response.charset_encoding, body

        got = self._get(url, {"Accept": ACCEPT}, read)
        if got is None:
            return None
        final_url, ctype, charset, body = got
        if ctype.split(";")[0].strip().lower() == JSON_TYPE:
            return parse_json_text(cname, final_url, body)
        return parse_html(cname, final_url, _decode_html(body, charset))

    def core_metadata(self, url: str, sha256: str) -> bytes | None:
        """The core metadata the index serves beside the file at ``url`` (PEP 658: at
        ``url + ".metadata"``), checked against ``sha256``; None when the index has none
        there.  At most :data:`MAX_METADATA_BYTES`; a failed check raises SourceError."""
        murl = url + ".metadata"
        body = self.fetch_small(murl, MAX_METADATA_BYTES)
        if body is None:
            return None
        if hashlib.sha256(body).hexdigest() != sha256:
            raise SourceError(f"{murl} does not match the sha256 its index page gives.",
                              hint="The index serves inconsistent files; report it to it.")
        return body

    def fetch_small(self, url: str, limit: int) -> bytes | None:
        """The body at ``url`` (http(s) or ``file://``), of at most ``limit`` bytes (beyond,
        IndexAccessError); None when there is nothing there (HTTP 404/410, no such file).
        For small documents: core metadata, attestations, build cache entries."""
        scheme = _scheme(url)
        if scheme == "file":
            try:
                with open_regular(file_path(url)) as fh:  # a FIFO must not block
                    body: bytes | None = fh.read(limit + 1)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
            except OSError as exc:
                raise IndexAccessError(f"Could not read {url}: {exc.strerror or exc}.",
                                       hint=_INDEX_HINT) from exc
        elif scheme not in ("http", "https"):
            raise IndexAccessError(f"{url!r} is not an http(s) or file:// URL.",
                                   hint=_INDEX_HINT)
        else:
            def read(response: httpx.Response, chunks: Iterator[bytes]) -> bytes:
                return _capped(chunks, limit, url)

            body = self._get(url, {}, read)
        if body is not None and len(body) > limit:
            raise IndexAccessError(f"{url} is larger than {limit} bytes.", hint=_INDEX_HINT)
        return body

    def _file_page(self, cname: str, url: str) -> ProjectPage | None:
        root = file_path(self.index_url)
        try:
            is_dir = root.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            raise IndexAccessError(
                f"The file index {self.index_url} is not a directory.",
                hint="Point --index-url at a directory holding <name>/index.html pages.",
            )
        folder = root / cname
        json_page, html_page = folder / "index.json", folder / "index.html"
        try:
            if json_page.is_file():
                return parse_json_text(cname, json_page.as_uri(), _read_capped(
                    json_page, self._max_page_bytes))
            if html_page.is_file():
                return parse_html(cname, url, _decode_html(
                    _read_capped(html_page, self._max_page_bytes), None))
        except OSError as exc:
            raise IndexAccessError(f"The index page {folder} could not be read: "
                                   f"{exc.strerror or exc}.", hint=_INDEX_HINT) from exc
        return None

    # -- files -----------------------------------------------------------------------

    def download(self, url: str, dest: Path, sha256: str | None,
                 allowed: AllowedHashes | None = None) -> str:
        """Download ``url`` to ``dest`` atomically, verifying ``sha256`` (what the index
        advertised) and, in hash-checking mode, that the bytes match one of ``allowed``
        (the requirement files' ``--hash`` for the project); return the sha256.  Nothing
        is kept at ``dest`` when a check fails."""
        scheme = _scheme(url)
        if scheme == "file":
            # An index page links a local file only from a file:// index (simple.py refuses
            # it elsewhere); a settings file may name one.
            src = file_path(url)
            hashers = _hashers(allowed)
            try:
                with atomic_destination(dest) as tmp:
                    fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block
                    with open(fd, "rb") as fh, open(tmp, "wb") as out:
                        if not stat.S_ISREG(os.fstat(fd).st_mode):
                            raise IndexAccessError(f"The index links to {url}, which is not a "
                                                   "regular file.", hint=_INDEX_HINT)
                        copy_verified(chunks_of(fh), out, hashers.values())
                    _check(dest.name, url, sha256, hashers, allowed)
            except OSError as exc:
                raise IndexAccessError(f"Could not read {src}: {exc.strerror or exc}.",
                                       hint=_INDEX_HINT) from exc
            return hashers["sha256"].hexdigest()
        if scheme not in ("http", "https"):
            raise IndexAccessError(f"The index links to {url!r}, which is not an http(s) "
                                   "URL.", hint=_INDEX_HINT)

        def fetch(response: httpx.Response, chunks: Iterator[bytes]) -> str:
            hashers = _hashers(allowed)
            with atomic_destination(dest) as tmp:
                with open(tmp, "wb") as fh:
                    copy_verified(chunks, fh, hashers.values())
                _check(dest.name, url, sha256, hashers, allowed)
            return hashers["sha256"].hexdigest()

        digest = self._get(url, {}, fetch)
        if digest is None:
            raise IndexAccessError(f"Downloading {url} failed with HTTP 404: the index "
                                   "lists a file it does not have.", hint=_INDEX_HINT)
        return digest


_T = TypeVar("_T")


def _within(deadline: float, fn: Callable[[threading.Event, threading.Event], _T],
            answer_within: float | None = None) -> _T:
    """``fn(cancelled, answered)`` run in a helper thread, given up at ``deadline``
    seconds with _Retry: the overall deadline of one attempt, which a server answering
    one byte at a time (headers included) cannot stretch.  ``fn`` sets ``answered``
    once the server began its answer; if it has not within ``answer_within`` seconds
    (what is left of the request's deadline), the attempt is given up with _Unanswered.
    A given-up attempt sees ``cancelled`` set at its next chunk, and its exception or
    result is dropped."""
    results: list[_T] = []
    errors: list[BaseException] = []
    done, cancelled, answered = threading.Event(), threading.Event(), threading.Event()

    def run() -> None:
        try:
            results.append(fn(cancelled, answered))
        except BaseException as exc:
            errors.append(exc)
        finally:
            answered.set()
            done.set()

    started = time.monotonic()
    threading.Thread(target=run, name="wheelstrap-fetch", daemon=True).start()
    if answer_within is not None and answer_within < deadline \
            and not answered.wait(max(answer_within, 0)):
        cancelled.set()
        raise _Unanswered("no answer began before the request's deadline")
    if not done.wait(max(deadline - (time.monotonic() - started), 0)):
        cancelled.set()
        raise _Retry(f"no complete answer within the deadline of {deadline:g} s")
    if errors:
        raise errors[0]
    return results[0]


def _chunks(response: httpx.Response, cancelled: threading.Event) -> Iterator[bytes]:
    """The body of ``response`` as it arrives; transport failures become _Retry."""
    import httpx

    try:
        for chunk in response.iter_bytes():
            if cancelled.is_set():
                raise _Retry("given up at the deadline")
            yield chunk
    except httpx.TimeoutException as exc:
        raise _Retry(f"timed out while reading ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise _Retry(f"interrupted: {type(exc).__name__}: {exc}") from None
_INDEX_HINT = "Check --index-url: it must be a simple repository API (PEP 503/691) you trust."


def _capped(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    """A body of at most ``limit`` bytes; beyond, IndexAccessError "``what`` is larger"."""
    body = io.BytesIO()
    try:
        copy_verified(chunks, body, limit=limit)
    except LimitExceeded:
        raise IndexAccessError(f"{what} is larger than {limit} bytes.",
                               hint=_INDEX_HINT) from None
    return body.getvalue()


def _read_capped(path: Path, limit: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise IndexAccessError(f"The index page {path} is larger than {limit} bytes.",
                               hint=_INDEX_HINT)
    return data


def _decode_html(body: bytes, charset: str | None) -> str:
    """An HTML page's text: its declared charset if Python knows it, else UTF-8; bytes
    that do not decode become U+FFFD (they cannot be part of a valid link anyway)."""
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    return body.decode(charset or "utf-8", "replace")


def _hashers(allowed: AllowedHashes | None) -> dict[str, hashlib._Hash]:
    names = {"sha256", *(allowed.digests if allowed is not None else ())}
    return {n: hashlib.new(n) for n in sorted(names)}


def _check(name: str, url: str, expected: str | None, hashers: dict[str, hashlib._Hash],
           allowed: AllowedHashes | None) -> None:
    actual = hashers["sha256"].hexdigest()
    if expected is not None and expected.lower() != actual:
        raise SourceError(
            f"The sha256 of {name} downloaded from {url} is {actual}, but the index "
            f"promised {expected}. The file was not kept.",
            hint="The index or a proxy served a different file than it lists; "
            "investigate before trusting this index.",
        )
    if allowed is not None:
        allowed.check(name, url, {n: h.hexdigest() for n, h in hashers.items()})


def verify_file(path: Path, allowed: AllowedHashes) -> None:
    """Check a file fetched earlier against the requirement files' ``--hash`` options
    (SourceError if none matches); for a download reused without fetching again."""
    hashers = _hashers(allowed)
    with open(path, "rb") as fh:
        copy_verified(chunks_of(fh), hashers=hashers.values())
    allowed.check(path.name, str(path), {n: h.hexdigest() for n, h in hashers.items()})


__all__ = ["DEFAULT_INDEX", "IndexClient", "verify_file"]
