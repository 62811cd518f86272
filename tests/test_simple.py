from __future__ import annotations

from packaging.specifiers import SpecifierSet

from wheelstrap.resolve import Absence, choose, sdist_candidates
from wheelstrap.simple import (
    IndexEntry,
    parse_html,
    parse_json,
    prefers_json,
    render_project_html,
    render_project_json,
)
from wheelstrap.target import Target

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
