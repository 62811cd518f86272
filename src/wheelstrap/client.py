"""Talking to a package index over http(s) or ``file://``, with retries."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name

from .errors import IndexAccessError, SourceError
from .fsutil import atomic_destination
from .simple import ACCEPT, JSON_TYPE, ProjectPage, parse_html, parse_json

if TYPE_CHECKING:
    import httpx

DEFAULT_INDEX = "https://pypi.org/simple/"


def _file_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(unquote(parsed.path))


class IndexClient:
    """Fetches project pages and files.  Thread-safe; one instance per run."""

    def __init__(
        self,
        index_url: str = DEFAULT_INDEX,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        scheme = urlparse(index_url).scheme
        if scheme not in ("http", "https", "file"):
            from .errors import UserInputError

            raise UserInputError(
                f"The index URL {index_url!r} is not an http(s):// or file:// URL.",
                hint="Pass --index-url https://pypi.org/simple/ or file:///path/to/simple/.",
            )
        self.index_url = index_url if index_url.endswith("/") else index_url + "/"
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, created (and httpx imported) on first use: a run whose every
        version is pinned and known needs no network and pays nothing for it."""
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self._timeout, follow_redirects=True,
                                            headers={"User-Agent": "wheelstrap"})
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- generic retrying GET --------------------------------------------------------

    def _with_retries(self, what: str, fn: Callable[[], httpx.Response]) -> httpx.Response:
        import httpx

        delay = self._backoff
        last: str = ""
        for attempt in range(self._retries + 1):
            try:
                response = fn()
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return response
                last = f"HTTP {response.status_code}"
                response.close()
            if attempt < self._retries:
                self._sleep(delay)
                delay *= 2
        raise IndexAccessError(
            f"Could not fetch {what} after {self._retries + 1} attempts (last error: {last}).",
            hint="Check the network and --index-url, then run again; finished work is kept.",
        )

    # -- project pages ---------------------------------------------------------------

    def project_page(self, name: str) -> ProjectPage | None:
        """The index's page for ``name``, or None when the index has no such project."""
        cname = canonicalize_name(name)
        url = f"{self.index_url}{cname}/"
        if url.startswith("file:"):
            return self._file_page(cname, url)
        response = self._with_retries(
            url, lambda: self._http.get(url, headers={"Accept": ACCEPT})
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise IndexAccessError(
                f"The index answered HTTP {response.status_code} for {url}.",
                hint="Check --index-url (it must point at a simple repository API root).",
            )
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        final_url = str(response.url)
        try:
            if ctype == JSON_TYPE:
                return parse_json(cname, final_url, response.json())
            return parse_html(cname, final_url, response.text)
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexAccessError(
                f"The index page {url} could not be parsed: {exc}.",
                hint="Check --index-url: it must serve PEP 503 HTML or PEP 691 JSON.",
            ) from exc

    def _file_page(self, cname: str, url: str) -> ProjectPage | None:
        root = _file_path(self.index_url)
        if not root.is_dir():
            raise IndexAccessError(
                f"The file index {self.index_url} is not a directory.",
                hint="Point --index-url at a directory holding <name>/index.html pages.",
            )
        folder = root / cname
        json_page, html_page = folder / "index.json", folder / "index.html"
        try:
            if json_page.is_file():
                return parse_json(cname, url, json.loads(json_page.read_text("utf-8")))
            if html_page.is_file():
                return parse_html(cname, url, html_page.read_text("utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise IndexAccessError(f"The index page {folder} could not be read: {exc}.") from exc
        return None

    # -- files -----------------------------------------------------------------------

    def download(self, url: str, dest: Path, sha256: str | None) -> str:
        """Download ``url`` to ``dest`` atomically, verifying ``sha256``; return the digest."""
        if url.startswith("file:"):
            src = _file_path(url)
            try:
                data = src.read_bytes()
            except OSError as exc:
                raise IndexAccessError(f"Could not read {src}: {exc}.") from exc
            digest = hashlib.sha256(data).hexdigest()
            _check_hash(dest.name, url, sha256, digest)
            with atomic_destination(dest) as tmp:
                tmp.write_bytes(data)
            return digest

        def attempt() -> httpx.Response:
            request = self._http.build_request("GET", url)
            return self._http.send(request, stream=True)

        response = self._with_retries(url, attempt)
        try:
            if response.status_code >= 400:
                raise IndexAccessError(
                    f"Downloading {url} failed with HTTP {response.status_code}."
                )
            hasher = hashlib.sha256()
            with atomic_destination(dest) as tmp:
                with open(tmp, "wb") as fh:
                    try:
                        for chunk in response.iter_bytes(1 << 16):
                            hasher.update(chunk)
                            fh.write(chunk)
                    except _transport_error() as exc:
                        raise IndexAccessError(
                            f"Downloading {url} was interrupted: {exc}."
                        ) from exc
                _check_hash(dest.name, url, sha256, hasher.hexdigest())
        finally:
            response.close()
        return hasher.hexdigest()


def _transport_error() -> type[Exception]:
    import httpx

    return httpx.TransportError


def _check_hash(name: str, url: str, expected: str | None, actual: str) -> None:
    if expected is not None and expected.lower() != actual:
        raise SourceError(
            f"The sha256 of {name} downloaded from {url} is {actual}, but the index "
            f"promised {expected}. The file was not kept.",
            hint="The index or a proxy served a different file than it lists; "
            "investigate before trusting this index.",
        )


__all__ = ["DEFAULT_INDEX", "IndexClient"]
