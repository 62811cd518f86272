"""The simple repository API (PEP 503 HTML, PEP 691 JSON, PEP 592 yanking): pure parsing
and rendering, no I/O.

Pages come from the network and are hostile until checked: every parser here either
returns a :class:`ProjectPage` whose fields have the documented types or raises
:class:`~wheelstrap.errors.IndexAccessError` naming the page, whatever the input.  The
cost of a parse is linear in the size of the page, and pages are capped at
:data:`MAX_PAGE_BYTES`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import (
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from wheelstrap.errors import IndexAccessError, Problems

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"

#: The largest project page accepted (the largest pages on PyPI are a few MB).
MAX_PAGE_BYTES = 64 * 1024 * 1024
#: Problems named in one error message; the rest are counted.
_SHOWN_PROBLEMS = 8

_HINT = ("Check --index-url: it must point at a simple repository API root (PEP 503 HTML "
         "or PEP 691 JSON) that you trust.")


@dataclass(frozen=True, slots=True)
class ProjectFile:
    """One file offered by an index for a project.

    ``yanked_reason`` is the reason PEP 592 lets an index give (None when it gave none or
    the file is not yanked)."""

    filename: str
    url: str
    sha256: str | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None = None
    #: the size in bytes a JSON page gives (PEP 700), unchecked: for estimates only
    size: int | None = None
    #: the sha256 of the file's core metadata, served beside it at URL + ".metadata"
    #: (PEP 658/714), when the index offers it with a hash
    metadata_sha256: str | None = None
    #: the upload time a JSON page gives (PEP 700 ``upload-time``), as the page gives it
    #: (a value that is no string is kept as its JSON text): unchecked here, read by
    #: :func:`wheelstrap.index.age.upload_time`; None when the page gives none (an HTML
    #: page never does)
    upload_time: str | None = None


@dataclass(frozen=True, slots=True)
class ProjectPage:
    name: NormalizedName
    files: tuple[ProjectFile, ...]


def _invalid(page_url: str, what: str, problems: Problems | str) -> IndexAccessError:
    """The one error of a page that is not a valid ``what``: every problem found on it
    (or the one that stopped its reading)."""
    if isinstance(problems, str):
        problems = Problems([problems])
    return problems.error(IndexAccessError, f"The index page {page_url} is not a valid {what}",
                          hint=_HINT, inline=True)


_HTML_PAGE = "PEP 503 project page"
_JSON_PAGE = "PEP 691 JSON project page"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


_HEX = re.compile(r"[0-9a-fA-F]+")


def _scheme_ok(page_url: str, url: str) -> str | None:
    """Why ``url``, linked from ``page_url``, must not be followed (None: it may)."""
    page_scheme = urlsplit(page_url).scheme.lower()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        if page_scheme == "file":
            return None
        return f"the link {_short(url)} points at a local file, which only a file:// index may do"
    return f"the link {_short(url)} has the unsupported scheme {scheme!r}"


def _bad_filename(filename: str) -> str | None:
    if not filename or filename in (".", "..") or any(c in filename for c in "/\\\0"):
        return f"the file name {_short(filename)} is not a plain file name"
    if len(filename) > 255:
        return f"the file name {_short(filename)} is longer than 255 characters"
    return None


def project_of(filename: str) -> NormalizedName | None:
    """The project a distribution file name belongs to (None: not a distribution name)."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[0]
        return parse_sdist_filename(filename)[0]
    except ValueError:  # InvalidSdistFilename, InvalidWheelFilename, InvalidVersion
        return None


def _check_files_name(name: NormalizedName, files: Sequence[ProjectFile],
                      problems: Problems) -> None:
    """A page whose distribution files all belong to one other project is that project's
    page, served for the wrong name."""
    owners = {p for p in (project_of(f.filename) for f in files) if p is not None}
    if owners and name not in owners and len(owners) == 1:
        problems.add(f"it was asked for {name!r} but lists only files of {owners.pop()!r}")


def _check_api_version(version: object, problems: Problems, where: str) -> None:
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]+\.[0-9]+", version):
        problems.add(f"{where} must be a version string like '1.0', not {_short(version)}")
    elif version.split(".")[0] != "1":
        problems.add(f"{where} is {version!r}; wheelstrap reads API version 1 only")


# -- HTML (PEP 503) ----------------------------------------------------------------------

# A start or end tag, tokenized the way HTML5 does: everything up to the first '>' that is
# not inside a quoted attribute value.  Possessive quantifiers keep the regex free of
# backtracking, so a match costs its own length and the only failure is an unclosed tag
# at the end of the page.  (html.parser is not used: it raises AssertionError on '<![' and
# takes quadratic time on unclosed quotes, CVE-2025-6069.)
_ATTR = r"""[^\s/>][^\s/>=]*+(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+"""
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*+)((?:\s++|/|" + _ATTR + r")*+)>")
_ATTR_RE = re.compile(r"""([^\s/>][^\s/>=]*+)(?:\s*+=\s*+("[^"]*+"|'[^']*+'|[^\s>]*+))?+""")
# Elements whose content is text up to their end tag (a '<a' in a <script> is no link).
_RAW_TEXT = {name: re.compile(r"</" + name + r"(?=[\s/>])", re.I) for name in (
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")}


@dataclass(frozen=True, slots=True)
class _Tag:
    name: str
    attrs: dict[str, str | None]
    text: str  # the text up to the matching end tag, for raw-text elements like <title>


def _attributes(body: str) -> dict[str, str | None]:
    attrs: dict[str, str | None] = {}
    for m in _ATTR_RE.finditer(body):
        key, raw = m.group(1).lower(), m.group(2)
        if raw is not None and raw[:1] in ("'", '"') and raw[-1:] == raw[:1] and len(raw) > 1:
            raw = raw[1:-1]
        if key not in attrs:  # HTML5: the first of duplicate attributes wins
            attrs[key] = html.unescape(raw) if raw is not None else None
    return attrs


def _start_tags(text: str) -> Iterator[_Tag]:
    """Every start tag of an HTML document, in linear time and whatever the input."""
    pos, end = 0, len(text)
    while True:
        pos = text.find("<", pos)
        if pos < 0 or pos + 1 >= end:
            return
        nxt = text[pos + 1]
        if text.startswith("<!--", pos):
            close = text.find("-->", pos + 4)
            if close < 0:
                return
            pos = close + 3
            continue
        if nxt in "!?":
            close = text.find(">", pos + 2)
            if close < 0:
                return
            pos = close + 1
            continue
        if not (nxt.isascii() and (nxt.isalpha() or nxt == "/")):
            pos += 1
            continue
        m = _TAG.match(text, pos)
        if m is None:
            if nxt == "/" and not (pos + 2 < end and text[pos + 2].isascii()
                                   and text[pos + 2].isalpha()):
                close = text.find(">", pos + 2)  # '</ ...>' is a bogus comment
                if close < 0:
                    return
                pos = close + 1
                continue
            return  # an unclosed tag runs to the end of the page: nothing follows it
        pos = m.end()
        if m.group(1):
            continue
        name = m.group(2).lower()
        inner = ""
        if name in _RAW_TEXT:
            close_m = _RAW_TEXT[name].search(text, pos)
            inner = text[pos:close_m.start() if close_m else end]
            pos = close_m.start() if close_m else end
        yield _Tag(name, _attributes(m.group(3)), inner)


def parse_html(name: str, page_url: str, text: str) -> ProjectPage:
    """Parse a PEP 503 project page; raise IndexAccessError naming ``page_url`` if it is
    not one for ``name``."""
    cname = canonicalize_name(name)
    problems = Problems(limit=_SHOWN_PROBLEMS)
    if len(text) > MAX_PAGE_BYTES:
        raise _invalid(page_url, _HTML_PAGE, f"it is larger than {MAX_PAGE_BYTES} bytes")
    base = page_url
    seen_base = False
    files: list[ProjectFile] = []
    for tag in _start_tags(text):
        if tag.name == "base" and not seen_base and tag.attrs.get("href"):
            seen_base = True
            try:
                base = urljoin(page_url, tag.attrs["href"])
            except ValueError:
                problems.add(f"the base URL {_short(tag.attrs['href'])} is not a URL")
        elif tag.name == "meta" and (tag.attrs.get("name") or "").lower() == \
                "pypi:repository-version":
            _check_api_version(tag.attrs.get("content"), problems, "pypi:repository-version")
        elif tag.name == "title":
            title = " ".join(html.unescape(tag.text).split())
            if title.lower().startswith("links for "):
                other = canonicalize_name(title[len("links for "):].strip())
                if other and other != cname:
                    problems.add(f"it was asked for {cname!r} but is titled {_short(title)}")
        elif tag.name == "a":
            f = _html_file(tag.attrs, base, page_url, problems)
            if f is not None:
                files.append(f)
    _check_files_name(cname, files, problems)
    if problems:
        raise _invalid(page_url, _HTML_PAGE, problems)
    return ProjectPage(cname, tuple(files))


def _html_file(attrs: dict[str, str | None], base: str, page_url: str,
               problems: Problems) -> ProjectFile | None:
    href = attrs.get("href")
    if not href or not href.strip():
        return None
    try:
        url, sha = _split_hash(urljoin(base, href.strip()))
        path = urlsplit(url).path
    except ValueError:
        problems.add(f"the link {_short(href)} is not a URL")
        return None
    why = _scheme_ok(page_url, url)
    if why is not None:
        problems.add(why)
        return None
    filename = unquote(path.rsplit("/", 1)[-1])
    if not filename:
        return None  # a link to a folder, not to a file
    bad = _bad_filename(filename)
    if bad is not None:
        problems.add(bad)
        return None
    if sha is not None and not _HEX.fullmatch(sha):
        problems.add(f"the sha256 of {_short(filename)} is not hexadecimal")
        return None
    yanked = "data-yanked" in attrs
    return ProjectFile(filename=filename, url=url, sha256=sha,
                       requires_python=attrs.get("data-requires-python") or None,
                       yanked=yanked, yanked_reason=(attrs["data-yanked"] or None)
                       if yanked else None,
                       metadata_sha256=_metadata_sha256(
                           attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")))


def _metadata_sha256(value: object) -> str | None:
    """The sha256 of a file's core metadata, from the value a page gives for it (PEP 714:
    ``core-metadata``, formerly ``dist-info-metadata``): ``sha256=HEX`` in an HTML
    attribute, ``{"sha256": HEX}`` in JSON; None for ``true`` (no hash to check it by),
    absence, or anything else."""
    if isinstance(value, dict):
        value = value.get("sha256")
    elif isinstance(value, str) and value.startswith("sha256="):
        value = value[len("sha256="):]
    else:
        return None
    return value.lower() if isinstance(value, str) and len(value) == 64 and _HEX.fullmatch(value) \
        else None


def _plain_absolute(href: str) -> bool:
    """Whether ``href`` is an absolute http(s) URL that joining with any page URL would
    leave as it is, with no fragment and nothing a URL parser would strip or re-encode:
    such a link needs neither ``urljoin`` nor a scheme check (half the time of parsing a
    large page went to them)."""
    rest = href.partition("://")[2]
    return href.startswith(("https://", "http://")) and rest[:1] not in ("", "/") \
        and href.isascii() and href.isprintable() \
        and not any(c in href for c in " #?;\\[]")


def _split_hash(url: str) -> tuple[str, str | None]:
    bare, fragment = urldefrag(url)
    if fragment.startswith("sha256="):
        return bare, fragment[len("sha256="):].lower()
    return bare, None


# -- JSON (PEP 691) ----------------------------------------------------------------------


def parse_json_text(name: str, page_url: str, raw: bytes | str) -> ProjectPage:
    """Decode and parse a PEP 691 project page as it came over the wire."""
    if len(raw) > MAX_PAGE_BYTES:
        raise _invalid(page_url, _JSON_PAGE, f"it is larger than {MAX_PAGE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _invalid(page_url, _JSON_PAGE, "its JSON is nested too deeply") from None
    except (ValueError, UnicodeError) as exc:  # JSONDecodeError is a ValueError
        raise _invalid(page_url, _JSON_PAGE, f"it is not JSON ({exc})") from None
    return parse_json(name, page_url, data)


def parse_json(name: str, page_url: str, data: Any) -> ProjectPage:
    """Parse a PEP 691 project page (already decoded from JSON), checking every field the
    PEP defines against its type; raise IndexAccessError naming ``page_url``."""
    cname = canonicalize_name(name)
    problems = Problems(limit=_SHOWN_PROBLEMS)
    if not isinstance(data, dict):
        raise _invalid(page_url, _JSON_PAGE, f"it is {_type_name(data)}, not an object")
    meta = data.get("meta")
    if not isinstance(meta, dict):
        problems.add(f"'meta' must be an object, not {_type_name(meta)}")
    else:
        _check_api_version(meta.get("api-version"), problems, "meta.api-version")
    page_name = data.get("name")
    if not isinstance(page_name, str):
        problems.add(f"'name' must be a string, not {_type_name(page_name)}")
    elif canonicalize_name(page_name) != cname:
        problems.add(f"it was asked for {cname!r} but is the page of {_short(page_name)}")
    entries = data.get("files")
    files: list[ProjectFile] = []
    if not isinstance(entries, list):
        problems.add(f"'files' must be an array, not {_type_name(entries)}")
    else:
        for i, entry in enumerate(entries):
            f = _json_file(entry, f"files[{i}]", page_url, problems)
            if f is not None:
                files.append(f)
    versions = data.get("versions")
    if versions is not None and not (isinstance(versions, list)
                                     and all(isinstance(v, str) for v in versions)):
        problems.add("'versions' must be an array of strings")
    if problems:
        raise _invalid(page_url, _JSON_PAGE, problems)
    return ProjectPage(cname, tuple(files))


def _json_file(entry: object, where: str, page_url: str,
               problems: Problems) -> ProjectFile | None:
    if not isinstance(entry, dict):
        problems.add(f"{where} must be an object, not {_type_name(entry)}")
        return None
    before = len(problems)

    def want(key: str, ok: bool, expected: str) -> None:
        if not ok:
            problems.add(f"{where}.{key} must be {expected}, not {_type_name(entry.get(key))}")

    filename, href, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
    rp, yanked = entry.get("requires-python"), entry.get("yanked", False)
    want("filename", isinstance(filename, str), "a string")
    want("url", isinstance(href, str), "a string")
    want("hashes", isinstance(hashes, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()),
        "an object mapping hash names to hex strings")
    want("requires-python", rp is None or isinstance(rp, str), "a string")
    want("yanked", isinstance(yanked, bool | str), "a boolean or a string")
    for key in ("dist-info-metadata", "data-dist-info-metadata", "core-metadata"):
        if key in entry:
            v = entry[key]
            want(key, isinstance(v, bool) or (isinstance(v, dict) and all(
                isinstance(k, str) and isinstance(x, str) for k, x in v.items())),
                "a boolean or an object of hashes")
    if "gpg-sig" in entry:
        want("gpg-sig", isinstance(entry["gpg-sig"], bool), "a boolean")
    if "size" in entry:
        size = entry["size"]
        want("size", isinstance(size, int) and not isinstance(size, bool) and size >= 0,
             "a non-negative integer")
    # upload-time is not checked here: a malformed one counts as missing, which the
    # release-age rules (wheelstrap.index.age) report, and is no reason to refuse the page
    if len(problems) > before or not (
            isinstance(filename, str) and isinstance(href, str) and isinstance(hashes, dict)):
        return None
    bad = _bad_filename(filename)
    if bad is not None:
        problems.add(f"{where}: {bad}")
        return None
    if _plain_absolute(href):  # most of PyPI's links: nothing to join, split or check
        bare, frag_sha = href, None
    else:
        try:
            bare, frag_sha = _split_hash(urljoin(page_url, href))
        except ValueError:
            problems.add(f"{where}.url {_short(href)} is not a URL")
            return None
        why = _scheme_ok(page_url, bare)
        if why is not None:
            problems.add(f"{where}: {why}")
            return None
    sha = hashes.get("sha256") or frag_sha
    if sha is not None and not _HEX.fullmatch(sha):
        problems.add(f"{where}: the sha256 {_short(sha)} is not hexadecimal")
        return None
    size = entry.get("size")  # checked above when present
    metadata = entry.get("core-metadata", entry.get("data-dist-info-metadata",
                                                    entry.get("dist-info-metadata")))
    return ProjectFile(filename=filename, url=bare, sha256=sha.lower() if sha else None,
                       requires_python=rp or None, yanked=yanked is not False,
                       yanked_reason=yanked or None if isinstance(yanked, str) else None,
                       size=size if isinstance(size, int) else None,
                       metadata_sha256=_metadata_sha256(metadata),
                       upload_time=_upload_time(entry))


def _upload_time(entry: dict[str, Any]) -> str | None:
    """A file's ``upload-time`` as given: a string as it is, another value as its JSON
    text (bounded), so that it is reported as malformed rather than taken as missing."""
    if "upload-time" not in entry or entry["upload-time"] is None:
        return None
    value = entry["upload-time"]
    if isinstance(value, str):
        return value[:100]
    try:
        return json.dumps(value)[:100]
    except (TypeError, ValueError, RecursionError):
        return _short(value)


# -- rendering -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A file to publish: ``href`` relative to the project page."""

    filename: str
    href: str
    sha256: str
    requires_python: str | None = None
    #: the URL of the wheel's in-toto statement, relative like ``href`` (served by
    #: ``wheelstrap serve``); given in the JSON form under a private key
    provenance: str | None = None
    #: the file's size in bytes and when it was published, as PEP 700 writes it
    #: (:func:`format_upload_time`): given in the JSON form only (PEP 700 adds nothing to
    #: the HTML one)
    size: int | None = None
    upload_time: str | None = None


#: The PEP 691 file key of the URL of a wheel's in-toto statement (private: PEP 691
#: reserves underscore-prefixed keys to index servers).  Not PEP 740's ``provenance``:
#: that must point at a provenance object of Sigstore attestation bundles (see
#: docs/attestations.md).
PROVENANCE_KEY = "_wheelstrap_provenance"


def render_root_html(names: Iterable[str]) -> str:
    links = "\n".join(
        f'    <a href="{n}/">{n}</a><br/>' for n in sorted({canonicalize_name(x) for x in names})
    )
    return (
        '<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" '
        f'content="1.0"><title>Simple index</title></head>\n  <body>\n{links}\n  </body>\n</html>\n'
    )


#: The API version of the JSON pages rendered here: 1.1 is PEP 700's (``versions`` on a
#: project page, ``size`` and ``upload-time`` for each file).  The HTML form is 1.0: PEP
#: 700 changes nothing in it.
JSON_API_VERSION = "1.1"


def format_upload_time(mtime_ns: int) -> str:
    """A time in nanoseconds since the epoch (a file's ``st_mtime_ns``) as PEP 700's
    ``upload-time`` says: ``yyyy-mm-ddThh:mm:ss.ffffffZ``, in UTC, to the microsecond."""
    seconds, ns = divmod(mtime_ns, 1_000_000_000)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{ns // 1000:06d}Z"


def render_root_json(names: Iterable[str]) -> str:
    projects = [{"name": n} for n in sorted({canonicalize_name(x) for x in names})]
    return json.dumps({"meta": {"api-version": JSON_API_VERSION}, "projects": projects},
                      indent=1) + "\n"


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
    """A PEP 691 project page at API version 1.1: PEP 700 makes each file's ``size``
    mandatory, so a server gives every entry its size (``wheelstrap serve`` does)."""
    files: list[dict[str, Any]] = []
    for e in sorted(entries, key=lambda e: e.filename):
        item: dict[str, Any] = {
            "filename": e.filename, "url": e.href, "hashes": {"sha256": e.sha256}
        }
        if e.requires_python:
            item["requires-python"] = e.requires_python
        if e.size is not None:
            item["size"] = e.size
        if e.upload_time is not None:
            item["upload-time"] = e.upload_time
        if e.provenance:
            item[PROVENANCE_KEY] = e.provenance
        files.append(item)
    doc = {"meta": {"api-version": JSON_API_VERSION}, "name": canonicalize_name(name),
           "versions": _versions(e.filename for e in entries), "files": files}
    return json.dumps(doc, indent=1) + "\n"


def dist_version(filename: str) -> Version | None:
    """The version a wheel's or an sdist's file name gives (None: not a distribution's
    name, or one that gives no valid version)."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1]
    except ValueError:  # packaging's InvalidWheelFilename/InvalidSdistFilename/InvalidVersion
        return None
    return None


def _versions(filenames: Iterable[str]) -> list[str]:
    """PEP 700's ``versions``: the version of each file, once each, oldest first (the
    order carries no meaning; this one is stable)."""
    found = {v for v in map(dist_version, filenames) if v is not None}
    return [str(v) for v in sorted(found)]


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
