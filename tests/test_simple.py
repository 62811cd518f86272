from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from wheelstrap.errors import IndexAccessError
from wheelstrap.index.resolve import Absence, choose, sdist_candidates
from wheelstrap.index.simple import (
    IndexEntry,
    parse_html,
    parse_json,
    parse_json_text,
    prefers_json,
    render_project_html,
    render_project_json,
)
from wheelstrap.model.target import Target

PAGE = "https://example.invalid/simple/demo/"


def test_html_page_parsing_handles_hashes_yanked_and_requires_python():
    text = """<html><body>
    <a href="../../files/demo-1.0.tar.gz#sha256=AB12">demo-1.0.tar.gz</a>
    <a href="https://x.invalid/demo-2.0.tar.gz" data-requires-python="&gt;=3.8"
       data-yanked="">demo-2.0.tar.gz</a>
    </body></html>"""
    page = parse_html("Demo", PAGE, text)
    assert page.name == "demo"
    first, second = page.files
    assert first.url == "https://example.invalid/files/demo-1.0.tar.gz"
    assert first.sha256 == "ab12" and not first.yanked
    assert second.requires_python == ">=3.8" and second.yanked and second.sha256 is None


def test_json_page_parsing():
    data = {"meta": {"api-version": "1.0"}, "name": "demo", "files": [
        {"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {"sha256": "FF"},
         "requires-python": ">=3", "yanked": "broken"}]}
    (f,) = parse_json("demo", PAGE, data).files
    assert f.url == PAGE + "demo-1.0.tar.gz" and f.sha256 == "ff" and f.yanked
    assert f.size is None  # the page did not say


def test_core_metadata_hashes_are_kept_from_either_page():
    # PEP 658/714: the metadata served beside a file, with the hash to check it by
    sha = "AB" * 32
    data = {"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": "demo-1.0-py3-none-any.whl", "url": "demo-1.0-py3-none-any.whl",
         "hashes": {}, "core-metadata": {"sha256": sha}},
        {"filename": "demo-1.1-py3-none-any.whl", "url": "demo-1.1-py3-none-any.whl",
         "hashes": {}, "dist-info-metadata": True},
        {"filename": "demo-1.2-py3-none-any.whl", "url": "demo-1.2-py3-none-any.whl",
         "hashes": {}, "core-metadata": {"sha256": "not hex"}}]}
    assert [f.metadata_sha256 for f in parse_json("demo", PAGE, data).files] == [
        sha.lower(), None, None]
    page = parse_html("demo", PAGE, (
        f'<a href="demo-1.0-py3-none-any.whl" data-core-metadata="sha256={sha}">x</a>'
        f'<a href="demo-1.1-py3-none-any.whl" data-dist-info-metadata="sha256={sha}">x</a>'
        '<a href="demo-1.2-py3-none-any.whl" data-core-metadata="true">x</a>'
        '<a href="demo-1.3.tar.gz">x</a>'))
    assert [f.metadata_sha256 for f in page.files] == [sha.lower(), sha.lower(), None, None]


def test_the_size_a_json_page_gives_is_kept():
    # PEP 700: the planner's estimate of a build it has not downloaded yet
    data = {"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {},
         "size": 1_230_289}]}
    (f,) = parse_json("demo", PAGE, data).files
    assert f.size == 1_230_289


def test_rendered_pages_parse_back():
    entries = [IndexEntry("demo-1.0-py3-none-any.whl", "../../demo-1.0-py3-none-any.whl",
                          "aa" * 32, ">=3.8,<4")]
    import json

    for page in (parse_html("demo", PAGE, render_project_html("demo", entries)),
                 parse_json("demo", PAGE, json.loads(render_project_json("demo", entries)))):
        (f,) = page.files
        assert f.sha256 == "aa" * 32 and f.requires_python == ">=3.8,<4"


def test_content_negotiation():
    assert prefers_json("application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    assert not prefers_json("text/html")
    assert not prefers_json(None)
    assert not prefers_json("application/vnd.pypi.simple.v1+json;q=0.1, text/html")


def _page(*names: str, rp: dict[str, str] | None = None):
    rp = rp or {}
    links = "".join(f'<a href="{n}" data-requires-python="{rp.get(n, "")}">{n}</a>'
                    for n in names)
    return parse_html("demo", PAGE, links)


def test_choose_newest_matching_and_prerelease_rules():
    target = Target.current()
    cands = sdist_candidates(_page("demo-1.0.tar.gz", "demo-1.1.tar.gz", "demo-2.0a1.tar.gz",
                                   "demo-1.2-py3-none-any.whl", "other-9.tar.gz"), target)
    assert [str(c.version) for c in cands] == ["2.0a1", "1.1", "1.0"]
    assert str(choose(cands, SpecifierSet()).version) == "1.1"  # type: ignore[union-attr]
    assert str(choose(cands, SpecifierSet(">=2.0a1")).version) == "2.0a1"  # type: ignore[union-attr]
    assert choose(cands, SpecifierSet(">=3")) is Absence.NO_MATCH
    assert choose(cands, SpecifierSet(), [SpecifierSet("<1")]) is Absence.CONFLICT
    assert choose([], SpecifierSet()) is Absence.NO_SDIST


def test_requires_python_filters_candidates():
    target = Target.current()
    cands = sdist_candidates(_page("demo-1.0.tar.gz", "demo-2.0.tar.gz",
                                   rp={"demo-2.0.tar.gz": ">=4"}), target)
    assert [str(c.version) for c in cands] == ["1.0"]


# -- hostile pages: every bad input ends in IndexAccessError naming the page -------------

H = "ab" * 32
GOOD_FILE = {"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz", "hashes": {"sha256": H}}


def _doc(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {"meta": {"api-version": "1.0"}, "name": "demo",
                              "files": [dict(GOOD_FILE)]}
    doc.update(over)
    return doc


def _file(**over: object) -> dict[str, object]:
    return _doc(files=[{**GOOD_FILE, **over}])


@pytest.mark.parametrize(("data", "needle"), [
    ({}, "'meta' must be an object"),
    ([], "it is an array, not an object"),
    ("x", "it is a string"),
    (_doc(meta=None), "'meta' must be an object, not null"),
    (_doc(meta={"api-version": 1}), "meta.api-version must be a version string"),
    (_doc(meta={"api-version": "2.0"}), "API version 1 only"),
    (_doc(name=None), "'name' must be a string"),
    (_doc(name="other"), "asked for 'demo' but is the page of 'other'"),
    (_doc(files={}), "'files' must be an array, not an object"),
    (_doc(files=None), "'files' must be an array, not null"),
    (_doc(files=[3]), "files[0] must be an object, not a number"),
    (_file(filename=7), "files[0].filename must be a string"),
    (_file(url=["x"]), "files[0].url must be a string"),
    (_file(hashes=[H]), "files[0].hashes must be an object"),
    (_file(hashes={"sha256": 5}), "files[0].hashes must be an object"),
    (_file(**{"requires-python": 3.8}), "files[0].requires-python must be a string"),
    (_file(yanked=["why"]), "files[0].yanked must be a boolean or a string"),
    (_file(size=-1), "files[0].size must be a non-negative integer"),
    (_file(**{"core-metadata": "yes"}), "files[0].core-metadata must be a boolean"),
    (_file(filename="../../evil-1.0.tar.gz"), "is not a plain file name"),
    (_file(url="file:///etc/passwd"), "only a file:// index may do"),
    (_file(url="javascript:alert(1)"), "unsupported scheme 'javascript'"),
    (_file(url="http://[::1/x"), "is not a URL"),
    (_file(hashes={"sha256": "zz"}), "is not hexadecimal"),
    (_doc(versions="1.0"), "'versions' must be an array of strings"),
])
def test_json_pages_with_wrong_types_are_refused(data, needle):
    with pytest.raises(IndexAccessError) as info:
        parse_json("demo", PAGE, data)
    assert PAGE in info.value.message and needle in info.value.message, info.value.message


def test_json_problems_are_reported_together():
    data = _doc(files=[{**GOOD_FILE, "filename": 1}, {**GOOD_FILE, "url": None}])
    with pytest.raises(IndexAccessError) as info:
        parse_json("demo", PAGE, data)
    assert "files[0].filename" in info.value.message
    assert "files[1].url" in info.value.message


@pytest.mark.parametrize("raw", [b"[" * 982, b"[" * 100_000, b'{"a":' * 5000, b"{",
                                 b"\xff\xfe\x00garbage", b"1" * 5000, b"", b"\x00"])
def test_undecodable_or_deep_json_is_refused(raw):
    with pytest.raises(IndexAccessError) as info:
        parse_json_text("demo", PAGE, raw)
    assert PAGE in info.value.message


def test_json_page_accepts_what_the_spec_allows():
    data = _doc(meta={"api-version": "1.1", "_last-serial": 1}, name="DEMO", versions=["1.0"],
                files=[{**GOOD_FILE, "requires-python": None, "yanked": "bad build",
                        "core-metadata": {"sha256": H}, "size": 3, "upload-time": "x",
                        "gpg-sig": False, "extra-key": [1]},
                       {**GOOD_FILE, "filename": "demo-2.0.tar.gz", "url": "demo-2.0.tar.gz",
                        "hashes": {}, "yanked": True}])
    first, second = parse_json("demo", PAGE, data).files
    assert first.yanked and first.yanked_reason == "bad build" and first.sha256 == H
    assert second.yanked and second.yanked_reason is None and second.sha256 is None


@pytest.mark.parametrize("text", [
    "<![", "<![CDATA[", "<![if x]>", "<a href='x" * 2000, "<!--" * 1000, "<" * 5000,
    "<a href=\"demo-1.0.tar.gz\"" * 3000, "</" * 3000, "<a\x00b>", "&#xffffffff;" * 10,
])
def test_malformed_html_parses_or_fails_cleanly(text):
    """html.parser raised AssertionError on '<![' and took quadratic time on unclosed
    quotes (200 KB of them took minutes); the tokenizer here is linear."""
    try:
        page = parse_html("demo", PAGE, text)
    except IndexAccessError as exc:
        assert PAGE in exc.message
    else:
        assert all(f.filename for f in page.files)


@pytest.mark.parametrize(("text", "needle"), [
    ("<title>Links for other</title><a href='other-1.0.tar.gz'>x</a>",
     "asked for 'demo' but is titled 'Links for other'"),
    ("<a href='other-1.0.tar.gz'>x</a><a href='other-2.0.tar.gz'>y</a>",
     "lists only files of 'other'"),
    ("<a href='file:///etc/demo-1.0.tar.gz'>x</a>", "only a file:// index may do"),
    ("<a href='ftp://x.invalid/demo-1.0.tar.gz'>x</a>", "unsupported scheme 'ftp'"),
    ("<a href='x%2F..%2Fdemo-1.0.tar.gz'>x</a>", "is not a plain file name"),
    ("<a href='demo-1.0.tar.gz#sha256=nothex'>x</a>", "is not hexadecimal"),
    ("<a href='http://[::1/demo-1.0.tar.gz'>x</a>", "is not a URL"),
    ('<meta name="pypi:repository-version" content="2.0">', "API version 1 only"),
])
def test_hostile_html_pages_are_refused(text, needle):
    with pytest.raises(IndexAccessError) as info:
        parse_html("demo", PAGE, text)
    assert PAGE in info.value.message and needle in info.value.message, info.value.message


def test_html_tokenizer_follows_html_rules():
    text = """<html><head><base href="https://mirror.invalid/m/"><title>Links for DEMO</title>
    </head><body><!-- <a href="hidden-1.0.tar.gz"> --><script>"<a href='s-1.0.tar.gz'>"</script>
    <A HREF='demo-1.0.tar.gz' data-yanked="bad &amp; old" href="ignored">x</A>
    <a href=demo-2.0.tar.gz data-requires-python=">=3.8">y</a><a name=anchor>z</a>
    <a href="local.tar.gz" title="don't > stop">w</a></body></html>"""
    page = parse_html("demo", "file:///srv/simple/demo/", text)
    assert [f.url for f in page.files] == [
        "https://mirror.invalid/m/demo-1.0.tar.gz", "https://mirror.invalid/m/demo-2.0.tar.gz",
        "https://mirror.invalid/m/local.tar.gz"]
    first, second, _ = page.files
    assert first.yanked and first.yanked_reason == "bad & old"
    assert not second.yanked and second.requires_python == ">=3.8"


def test_file_links_are_accepted_from_a_file_index():
    page = parse_html("demo", "file:///srv/simple/demo/",
                      "<a href='file:///srv/files/demo-1.0.tar.gz'>x</a>")
    assert page.files[0].url == "file:///srv/files/demo-1.0.tar.gz"


# -- properties: a page or a clean error, nothing else ------------------------------------

_PROFILE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

_html_text = st.lists(st.one_of(
    st.sampled_from(["<a ", "href=", "'", '"', ">", "<![", "<!--", "-->", "</a>", "<base ",
                     "<title>", "data-yanked", "#sha256=", "demo-1.0.tar.gz", "file:///x",
                     "&amp;", "<script>", "\x00", "=", " "]),
    st.text(max_size=8)), max_size=40).map("".join)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    | st.sampled_from(["demo", "1.0", "demo-1.0.tar.gz", H, "file:///x"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["meta", "api-version", "name", "files", "filename", "url", "hashes",
                         "sha256", "requires-python", "yanked", "size", "versions", "x"]),
        inner, max_size=5),
    max_leaves=25)


@_PROFILE
@given(_html_text)
def test_property_html(text):
    try:
        page = parse_html("demo", PAGE, text)
    except IndexAccessError:
        return
    for f in page.files:
        assert isinstance(f.filename, str) and "/" not in f.filename
        assert f.url.startswith(("http://", "https://"))


@_PROFILE
@given(_json)
def test_property_json_value(data):
    try:
        page = parse_json("demo", PAGE, data)
    except IndexAccessError:
        return
    for f in page.files:
        assert isinstance(f.filename, str) and isinstance(f.url, str)
        assert f.requires_python is None or isinstance(f.requires_python, str)


@_PROFILE
@given(st.binary(max_size=200) | _json.map(lambda v: json.dumps(v).encode()))
def test_property_json_text(raw):
    try:
        page = parse_json_text("demo", PAGE, raw)
    except IndexAccessError:
        return
    assert all(isinstance(f.filename, str) for f in page.files)


_url_chars = st.sampled_from([*"ab/.:%@[]?#;~-_ \\\t\nAZ09é", "//", "../", "%2e"])


@given(st.sampled_from(["https://", "http://", "HTTPS://", "file://", "ftp://", "//", ""]),
       st.lists(_url_chars, max_size=12).map("".join),
       st.sampled_from([PAGE, "http://example.org/simple/demo/", "file:///srv/simple/demo/"]))
@settings(max_examples=400)
def test_links_taken_as_they_are_are_what_joining_would_give(scheme, rest, page_url):
    """The fast path for absolute links gives exactly what urljoin and the checks give."""
    from urllib.parse import urljoin

    from wheelstrap.index.simple import _plain_absolute, _scheme_ok, _split_hash

    href = scheme + rest
    if not _plain_absolute(href):
        return
    assert _split_hash(urljoin(page_url, href)) == (href, None)
    assert _scheme_ok(page_url, href) is None


def test_a_page_of_absolute_links_parses_as_before():
    files = [{"filename": f"demo-1.{i}.tar.gz", "hashes": {"sha256": "ab" * 32},
              "url": f"https://files.example/p/{i}/../demo-1.{i}.tar.gz"} for i in range(3)]
    files.append({"filename": "demo-2.0.tar.gz", "hashes": {},
                  "url": "../../files/demo-2.0.tar.gz#sha256=" + "CD" * 32})
    files.append({"filename": "demo-3.0.tar.gz", "hashes": {}, "url": "ftp://x/demo-3.0.tar.gz"})
    page = parse_json("demo", PAGE, {"meta": {"api-version": "1.0"}, "name": "demo",
                                     "files": files[:4]})
    assert [f.url for f in page.files] == [
        *(f"https://files.example/p/{i}/../demo-1.{i}.tar.gz" for i in range(3)),
        urljoin_page("../../files/demo-2.0.tar.gz")]
    assert page.files[3].sha256 == "cd" * 32
    with pytest.raises(IndexAccessError, match="unsupported scheme"):
        parse_json("demo", PAGE, {"meta": {"api-version": "1.0"}, "name": "demo",
                                  "files": files})


def urljoin_page(href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(PAGE, href)
