"""The simple repository API (PEP 503 HTML, PEP 691 JSON, PEP 592 yanking): pure parsing
and rendering, no I/O."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

from packaging.utils import NormalizedName, canonicalize_name

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"


@dataclass(frozen=True, slots=True)
class ProjectFile:
    """One file offered by an index for a project."""

    filename: str
    url: str
    sha256: str | None
    requires_python: str | None
    yanked: bool


@dataclass(frozen=True, slots=True)
class ProjectPage:
    name: NormalizedName
    files: tuple[ProjectFile, ...]


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def _split_hash(url: str) -> tuple[str, str | None]:
    bare, fragment = urldefrag(url)
    if fragment.startswith("sha256="):
        return bare, fragment[len("sha256="):].lower()
    return bare, None


def parse_html(name: str, page_url: str, text: str) -> ProjectPage:
    """Parse a PEP 503 project page."""
    parser = _Anchors()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, sha = _split_hash(urljoin(base, href))
        filename = url.rsplit("/", 1)[-1]
        files.append(
            ProjectFile(
                filename=filename,
                url=url,
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
            )
        )
    return ProjectPage(canonicalize_name(name), tuple(files))


def parse_json(name: str, page_url: str, data: Any) -> ProjectPage:
    """Parse a PEP 691 project page (already decoded from JSON)."""
    files = []
    for entry in data.get("files", []):
        url = urljoin(page_url, entry["url"])
        bare, frag_sha = _split_hash(url)
        hashes = entry.get("hashes") or {}
        sha = hashes.get("sha256") or frag_sha
        files.append(
            ProjectFile(
                filename=entry["filename"],
                url=bare,
                sha256=sha.lower() if sha else None,
                requires_python=entry.get("requires-python") or None,
                yanked=bool(entry.get("yanked")),
            )
        )
    return ProjectPage(canonicalize_name(data.get("name", name)), tuple(files))


# -- rendering -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A file to publish: ``href`` relative to the project page."""

    filename: str
    href: str
    sha256: str
    requires_python: str | None = None


def render_root_html(names: Iterable[str]) -> str:
    links = "\n".join(
        f'    <a href="{n}/">{n}</a><br/>' for n in sorted({canonicalize_name(x) for x in names})
    )
    return (
        '<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" '
        f'content="1.0"><title>Simple index</title></head>\n  <body>\n{links}\n  </body>\n</html>\n'
    )


def render_root_json(names: Iterable[str]) -> str:
    projects = [{"name": n} for n in sorted({canonicalize_name(x) for x in names})]
    return json.dumps({"meta": {"api-version": "1.0"}, "projects": projects}, indent=1) + "\n"


def render_project_html(name: str, entries: Sequence[IndexEntry]) -> str:
    lines = []
    for e in sorted(entries, key=lambda e: e.filename):
        rp = (
            f' data-requires-python="{html.escape(e.requires_python, quote=True)}"'
            if e.requires_python
            else ""
        )
        lines.append(f'    <a href="{html.escape(e.href)}#sha256={e.sha256}"{rp}>'
                     f"{html.escape(e.filename)}</a><br/>")
    body = "\n".join(lines)
    cname = canonicalize_name(name)
    return (
        '<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" '
        f'content="1.0"><title>Links for {cname}</title></head>\n  <body>\n'
        f"    <h1>Links for {cname}</h1>\n{body}\n  </body>\n</html>\n"
    )


def render_project_json(name: str, entries: Sequence[IndexEntry]) -> str:
    files: list[dict[str, Any]] = []
    for e in sorted(entries, key=lambda e: e.filename):
        item: dict[str, Any] = {
            "filename": e.filename, "url": e.href, "hashes": {"sha256": e.sha256}
        }
        if e.requires_python:
            item["requires-python"] = e.requires_python
        files.append(item)
    doc = {"meta": {"api-version": "1.0"}, "name": canonicalize_name(name), "files": files}
    return json.dumps(doc, indent=1) + "\n"


def prefers_json(accept: str | None) -> bool:
    """Content negotiation for PEP 691: does ``accept`` rank JSON above HTML?"""
    if not accept:
        return False
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        ranks[mtype] = max(q, ranks.get(mtype, 0.0))
    json_q = ranks.get(JSON_TYPE, ranks.get("application/vnd.pypi.simple.latest+json", 0.0))
    html_q = max(
        ranks.get(HTML_TYPE, 0.0),
        ranks.get("application/vnd.pypi.simple.latest+html", 0.0),
        ranks.get("text/html", 0.0),
        ranks.get("*/*", 0.0),
    )
    return json_q > 0 and json_q >= html_q
