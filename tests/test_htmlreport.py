"""The HTML report: its payload, its size on 3,000 packages, and the page itself opened in
headless Chromium (no console error, one node per package, cycles highlighted, a click
shows the details), on synthetic outputs and on a real bootstrap.  The timeline, the
critical path and the longest builds are in test_report_timeline.py."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Page, chromium, chromium_path
from click.testing import CliRunner
from reportdocs import big_run, small_run, timed_run, write_out
from scenario import Pkg
from test_cycles import TWO

from wheelstrap.store.report import build_payload, load_docs, render, write_report
from wheelstrap.ui.cli import main

# Read when the module is imported: conftest's hermetic fixture clears WHEELSTRAP_*
# variables from the environment before any test runs.
SKIP_ENV = "WHEELSTRAP_SKIP_BROWSER_TESTS"
SKIP_BROWSER = os.environ.get(SKIP_ENV)
ARTIFACTS = os.environ.get("WHEELSTRAP_TEST_ARTIFACTS")


def test_payload_of_a_small_run(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    p = build_payload(load_docs(out))
    keys = [n["k"] for n in p["nodes"]]
    assert keys == sorted(["app 1.0", "backend 1.0", "cyc-a 1.0", "cyc-b 1.0", "helper 0.5",
                           "lib 2.0", "lib-two 1.0"])
    at = {k: i for i, k in enumerate(keys)}
    s = p["summary"]
    assert (s["built"], s["reused"], s["failed"], s["blocked"], s["cycles"]) == (4, 1, 1, 1, 1)
    assert s["strict"] is True and s["ok"] is False and s["targets"] == ["app"]
    assert [x["wheel"] for x in s["seeds"]] == ["seedy-1.0-py3-none-any.whl"]
    (cycle,) = p["cycles"]
    assert sorted(cycle["members"]) == [at["cyc-a 1.0"], at["cyc-b 1.0"]]
    assert len(cycle["closing"]) == 2
    assert p["nodes"][at["lib-two 1.0"]]["f"] == 0
    assert p["nodes"][at["app 1.0"]]["bl"] == "lib-two 1.0"
    assert p["nodes"][at["cyc-a 1.0"]]["logs"] == ["cyc-a-1.0.log"]
    # the chain from the target: app -> lib -> cyc-a -> cyc-b, by parent edges
    chain, v = [], at["cyc-b 1.0"]
    while p["nodes"][v]["pa"] is not None:
        e = p["edges"][p["nodes"][v]["pa"]]
        chain.append(keys[e[0]])
        v = e[0]
    assert chain == ["cyc-a 1.0", "lib 2.0", "app 1.0"]
    # one bar per build, failed ones included, from the events (the truncated last line
    # and the unknown kind are ignored): every one on the worker its finish names
    assert len(p["bars"]) == 6 and [b[7] for b in p["bars"]].count(False) == 1
    assert {b[1] for b in p["bars"]} <= {"worker-0", "worker-1", "worker-2", "worker-3"}
    assert None not in [b[7] for b in p["bars"]]
    assert p["critical"]["bars"] and p["longest"]


def test_optional_documents_may_be_missing(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run(), events=False, failures=False,
                    provenance=False)
    (out / "cycles.json").unlink()
    (out / "build-order.json").unlink()
    page = render(load_docs(out))
    data = json.loads(re.search(r'id="data">(.*?)</script>', page, re.S).group(1))
    assert data["summary"]["have"] == {"build_order": False, "cycles": False,
                                       "failures": False, "events": False}
    assert data["bars"] == [] and data["cycles"] == []


def test_fields_no_reader_checks_cannot_break_the_payload(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    doc = json.loads((out / "cycles.json").read_text())
    doc["cycles"][0].update(broken_by={"method": "seeds", "seeds": "x", "stage0": [1]},
                            stage_wheels=[3, {"stage": 1, "wheels": []}],
                            seed_checks=[None], warnings=[1])
    (out / "cycles.json").write_text(json.dumps(doc))
    for prov in (out / "provenance").iterdir():
        prov.write_text('{"predicate": {"buildDefinition": [], "runDetails": 3}}')
    p = build_payload(load_docs(out))
    (c,) = p["cycles"]
    assert c["stage_wheels"] == [{"stage": 1, "wheels": {}}] and c["seed_checks"] == []
    assert c["warnings"] == ["1"] and p["summary"]["stage0"] == []


def test_page_is_self_contained_and_escapes_what_it_embeds(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    page = render(load_docs(out))
    code = re.sub(r'id="data">.*?</script>', "", page, flags=re.S)
    for fetch in ("<link", " src=", "@import", "url(http", "fetch(", "XMLHttpRequest",
                  'href="http'):
        assert fetch not in code
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("</script>") == 2  # the failure tail "<boom>" cannot close the data
    assert "<boom>" not in page


def test_three_thousand_packages_render_small_and_fast(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", big_run(3000))
    docs = load_docs(out)
    start = time.perf_counter()
    page = render(docs)
    took = time.perf_counter() - start
    size = len(page.encode())
    print(f"3000 packages: render {took:.2f} s, {size / 1e6:.2f} MB")
    assert size < 6_000_000  # an upper bound with room; measured about 2.3 MB


def test_report_command_writes_the_page(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("damage,expect", [
    (lambda o: (o / "graph.json").unlink(), "graph.json does not exist"),
    (lambda o: (o / "graph.json").write_text("{nope"), "graph.json is not valid JSON"),
    (lambda o: (o / "build-order.json").write_text('{"schema": "x", "version": 1}'),
     "build-order.json is not a valid wheelstrap-build-order v1 document"),
    (lambda o: (o / "cycles.json").write_text('{"schema": "wheelstrap-cycles", "version": 1,'
                                              ' "cycles": [{"id": 3}]}'),
     "cycles[0].id: expected a string"),
    (lambda o: (o / "failures.json").write_text('{"schema": "wheelstrap-failures", '
                                                '"version": 1, "failures": {}}'),
     "failures.json is not a valid"),
    (lambda o: (o / "events.jsonl").write_text('{"t": 1, "event": "x"}\nbroken\n{"t": 2, '
                                               '"event": "y"}\n'),
     "events.jsonl is not a valid wheelstrap event log document: line 2"),
    (lambda o: (o / "provenance" / "x.whl.intoto.json").write_text("]"),
     "x.whl.intoto.json is not a readable provenance statement"),
])
def test_report_command_on_broken_documents(tmp_path: Path, damage, expect) -> None:
    out = write_out(tmp_path / "out", small_run())
    damage(out)
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 1
    assert expect in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (out / "report.html").exists()


# -- in a browser -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser() -> str:
    if SKIP_BROWSER:
        pytest.skip(f"{SKIP_ENV} is set")
    exe = chromium_path()
    if exe is None:
        pytest.fail("The report tests need headless Chromium at /usr/bin/chromium: install "
                    f"it (apt-get install -y chromium), or set {SKIP_ENV}=1 to skip them.")
    return exe


@pytest.fixture
def page(browser: str, tmp_path: Path) -> Iterator[Page]:
    with chromium(tmp_path / "profile") as p:
        yield p


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept: $WHEELSTRAP_TEST_ARTIFACTS, else pytest's base temp."""
    folder = Path(ARTIFACTS or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(page: Page, html: Path) -> None:
    page.open(html.resolve().as_uri())
    assert page.evaluate("document.body.dataset.ready") == "1", page.errors()


def test_the_error_check_catches_a_broken_page(page: Page, tmp_path: Path) -> None:
    """The harness must be able to fail: a script error and a console error are seen."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('visible');"
                   "undefinedFunction();</script></body></html>")
    page.open(bad.as_uri())
    errors = page.errors()
    assert any("undefinedFunction" in e for e in errors), errors
    assert any("visible" in e for e in errors), errors
    # and a page whose data is damaged fails to render: no "ready" mark, an error seen
    good = render(load_docs(write_out(tmp_path / "out", small_run())))
    broken = tmp_path / "broken.html"
    broken.write_text(good.replace('id="data">{', 'id="data">{,'))
    page.open(broken.as_uri())
    assert page.evaluate("document.body.dataset.ready") is None
    assert any("JSON" in e for e in page.errors()), page.errors()


def test_small_report_in_a_browser(page: Page, tmp_path: Path, artifacts: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    _open(page, write_report(out))
    assert page.errors() == []
    assert page.evaluate("document.querySelectorAll('#svg g.node').length") == 7
    assert page.evaluate("document.querySelectorAll('#svg g.node.cyc').length") == 2
    assert page.evaluate("document.querySelectorAll('#svg path.edge.cyc').length") == 2
    assert page.evaluate("document.querySelectorAll('#svg path.edge.build').length") == 3
    assert page.evaluate("document.querySelectorAll('#svg g.node.failed').length") == 1
    page.click('#svg g.node.cyc')
    details = page.poll("document.querySelector('#details h3') && "
                        "document.getElementById('details').innerText")
    assert details.startswith("cyc-a 1.0")
    assert "Chains from the targets" in details and "lib 2.0" in details
    assert "seedy-1.0-py3-none-any.whl" in details and "stage 2" in details
    assert page.evaluate("document.querySelectorAll('#svg g.node.sel').length") == 1
    assert page.evaluate("document.querySelectorAll('#tl rect.bar').length") == 6
    assert "RuntimeError: <boom> & co" in page.evaluate(
        "document.getElementById('failures-body').innerText")
    page.click("#wheels summary")
    assert page.poll("document.querySelectorAll('#wheels tr').length") == 6
    page.screenshot(artifacts / "report-small.png")
    assert page.errors() == []


_RGB = "(s) => getComputedStyle(document.querySelector(s)).{}"


def _hue(css: str) -> float:
    """The hue, in degrees, of an ``rgb(r, g, b)`` colour."""
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", css)[:3])
    hi, lo = max(r, g, b), min(r, g, b)
    if hi == lo:
        return 0.0
    h = (g - b) / (hi - lo) if hi == r else 2 + (b - r) / (hi - lo) if hi == g \
        else 4 + (r - g) / (hi - lo)
    return (h * 60) % 360


def test_cycle_members_and_failures_are_told_apart(page: Page, tmp_path: Path) -> None:
    """A cycle member is not filled in a colour close to the one for failed, in the graph
    or in the legend; the legend's boxes are filled as the graph's nodes are."""
    _open(page, write_report(write_out(tmp_path / "out", small_run())))

    def colour(selector: str, prop: str) -> str:
        return str(page.evaluate(f"({_RGB.format(prop)})({json.dumps(selector)})"))

    cyc = colour("#svg g.node.cyc rect", "fill")
    failed = colour("#svg g.node.failed rect", "fill")
    assert colour(".legend .box.cyc", "backgroundColor") == cyc
    assert colour(".legend .box.failed", "backgroundColor") == failed
    apart = abs(_hue(cyc) - _hue(failed))
    assert min(apart, 360 - apart) >= 60, (cyc, failed)
    edge, swatch = colour("#svg path.edge.cyc", "stroke"), colour(".legend .sw.cyc",
                                                                  "borderTopColor")
    assert edge == swatch and edge != colour("#svg g.node.failed rect", "fill")
    assert page.errors() == []


def test_timeline_of_known_durations_in_a_browser(page: Page, tmp_path: Path,
                                                  artifacts: Path) -> None:
    _open(page, write_report(write_out(tmp_path / "out", timed_run())))
    assert page.evaluate("Array.from(document.querySelectorAll('#tl text.worker'))"
                         ".map(t => t.textContent)") == ["w0", "w1"]
    assert page.evaluate("document.querySelectorAll('#tl rect.bar').length") == 16
    assert page.evaluate("document.querySelectorAll('#tl rect.bar.open').length") == 0
    assert page.evaluate("document.querySelectorAll('#tl rect.bar.crit').length") == 9
    critical = page.evaluate("document.getElementById('critical').innerText")
    assert critical.startswith("Critical path (5.4 s, "), critical
    assert critical.endswith(
        ": setuptools 84.2.1 (2.5 s) \u2192 vcs-versioning 2.6.0 (0.90 s) \u2192 "
        "setuptools-scm 10.3.4 (1.0 s) \u2192 pluggy 1.7.0 (0.60 s) \u2192 "
        "hatchling 1.33.0 (build 0.40 s)"), critical
    longest = page.evaluate("document.getElementById('longest').innerText")
    assert longest.startswith("Longest builds: setuptools 84.2.1 2.5 s (prepare 2.0 s, "
                              "build 0.50 s), setuptools-scm 10.3.4 1.0 s"), longest
    assert "flit-core 4.2.0 0.42 s (prepare 0.41 s, build 0.014 s)" in longest
    page.screenshot(artifacts / "report-timeline.png")
    assert page.errors() == []


def test_three_thousand_package_report_in_a_browser(page: Page, tmp_path: Path,
                                                    artifacts: Path) -> None:
    out = write_out(tmp_path / "out", big_run(3000))
    start = time.perf_counter()
    _open(page, write_report(out))
    print(f"3000 packages: written and loaded in Chromium in {time.perf_counter() - start:.2f} s")
    assert page.errors() == []
    assert page.evaluate("document.querySelectorAll('#pkgs li').length") == 3000
    drawn = page.evaluate("document.querySelectorAll('#svg g.node').length")
    assert 12 <= drawn <= 250  # targets, cycle members, failures: not 3,000 boxes
    assert page.evaluate("document.querySelectorAll('#svg g.node.cyc').length") == 10
    page.evaluate("(() => { const s = document.getElementById('search');"
                  " s.value = 'pkg-2999'; s.dispatchEvent(new Event('input')); })()")
    visible = page.evaluate("Array.from(document.querySelectorAll('#pkgs li'))"
                            ".filter(li => li.style.display !== 'none').length")
    assert visible == 1
    page.click("#pkgs li[data-i]:not([style*='none'])")
    assert page.poll("document.querySelector('#details h3') && "
                     "document.querySelector('#details h3').textContent") == "pkg-2999 1.3"
    assert page.evaluate("document.querySelectorAll('#details .chain').length") == 5
    assert page.evaluate("document.querySelectorAll('#svg g.node.sel').length") == 1
    page.screenshot(artifacts / "report-3000.png")
    assert page.errors() == []


def test_report_of_a_real_bootstrap_in_a_browser(serve_index, run_bootstrap, page: Page,
                                                 artifacts: Path) -> None:
    index = serve_index([*TWO, Pkg("extra", deps=[])])
    run = run_bootstrap("app", "extra", index=index.url)
    assert run.code == 0, run.stderr
    result = CliRunner().invoke(main, ["report", str(run.out)])
    assert result.exit_code == 0, result.output
    graph = json.loads((run.out / "graph.json").read_text())
    _open(page, run.out / "report.html")
    assert page.errors() == []
    assert page.evaluate("document.querySelectorAll('#svg g.node').length") == \
        len(graph["nodes"])
    assert page.evaluate("document.querySelectorAll('#svg g.node.cyc').length") == 2
    page.click('#svg g.node.cyc')
    details = page.poll("document.querySelector('#details h3') && "
                        "document.getElementById('details').innerText")
    assert details.split("\n", 1)[0] in {"hostback 1.0", "hosthelper 1.0"}
    assert "Build cycle" in details and "sha256" in details
    page.screenshot(artifacts / "report-bootstrap.png")
    assert page.errors() == []
