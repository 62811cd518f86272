#!/usr/bin/env python3
"""Fuzz wheelstrap's parsers of index and requirement input, in-process.

Each target gets random and mutated inputs grown from valid seeds; every outcome is
classified as *accepted* (a value came back), a *clean error* (wheelstrap's own
``WheelstrapError``), an *internal error* (any other exception: a bug) or a *hang* (an
input that took longer than ``--hang`` seconds).  Internal errors are grouped by
exception type and place, each with the smallest input that raised it.

    python fuzz/fuzz_index.py                       # 20,000 inputs per target
    python fuzz/fuzz_index.py --inputs 250000 --seed 7
    python fuzz/fuzz_index.py --seconds 600 --only html,json-value

Run it for as long as you like; the run is deterministic for a given ``--seed`` and
``--inputs``.  Exit status 1 when anything internal or a hang was found.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from wheelstrap.errors import WheelstrapError
from wheelstrap.index.reqfiles import parse_requirement, read_files
from wheelstrap.index.resolve import available_versions, choose, sdist_candidates
from wheelstrap.index.simple import (
    IndexEntry,
    parse_html,
    parse_json,
    parse_json_text,
    render_project_html,
    render_project_json,
)
from wheelstrap.model.target import Target

PAGE_URL = "https://index.invalid/simple/demo/"
H = "0123456789abcdef" * 4


# -- seeds --------------------------------------------------------------------------------

def _entries() -> list[IndexEntry]:
    return [IndexEntry("demo-1.0.tar.gz", "../../files/demo-1.0.tar.gz", H, size=5,
                       upload_time="2026-11-01T10:00:00.123456Z"),
            IndexEntry("demo-2.0-py3-none-any.whl", "../../files/demo-2.0-py3-none-any.whl",
                       H[::-1], ">=3.8, <4"),
            IndexEntry("Demo-10.0.zip", "https://files.invalid/Demo-10.0.zip", H, "!=3.0.*")]


HTML_SEEDS = [
    render_project_html("demo", _entries()),
    """<!DOCTYPE html><html><head><base href="https://mirror.invalid/x/">
<meta name="pypi:repository-version" content="1.1"><title>Links for demo</title></head>
<body><!-- a comment --><script>var s = "<a href='x'>";</script>
<a href="demo-1.0.tar.gz#sha256=ABCDEF" data-requires-python="&gt;=3.7" data-yanked>d</a>
<A HREF='../demo-2.0.tar.gz' data-yanked="broken build" data-dist-info-metadata=true>e</A>
<a href=demo-3.0.zip>f</a><a name="anchor">no link</a><![CDATA[ x ]]><?pi?></body></html>""",
    '<a href="demo-1.0.tar.gz">demo-1.0.tar.gz</a>',
]

JSON_SEEDS: list[Any] = [
    json.loads(render_project_json("demo", _entries())),
    {"meta": {"api-version": "1.1", "_last-serial": 3}, "name": "Demo", "versions": ["1.0"],
     "files": [{"filename": "demo-1.0.tar.gz", "url": "demo-1.0.tar.gz#sha256=" + H,
                "hashes": {}, "requires-python": None, "yanked": "reason",
                "core-metadata": {"sha256": H}, "size": 10, "upload-time": "2020-01-01",
                "gpg-sig": False, "dist-info-metadata": True}]},
]

REQ_SEEDS = [
    "# a comment\nalpha>=1 \\\n  ,<3\n-c cons.txt\nbeta[x]; python_version >= '3'  # note\n",
    f"alpha==1.0 --hash=sha256:{H} \\\n    --hash sha256:{H[::-1]}\n"
    f"gamma===2 --hash=sha512:{H * 2}\n-r base.txt\n",
    "-r base.txt\n--requirement=base.txt\n-cbase.txt\n",
    "name @ https://x.invalid/a.tar.gz\n-e .\n--index-url https://x.invalid/\n",
]
HELPER_FILES = {"base.txt": "alpha\n-r req.txt\n", "cons.txt": "alpha==2.0\n"}

REQ_LINES = ["alpha", "alpha>=1.0,<2", "alpha[x,y]>=1; python_version >= '3.8'",
             "Alpha.Beta_gamma ==1.0.*", "alpha===weird", "alpha (>=1)",
             "alpha; sys_platform == 'linux' and extra == 'x'"]

TOKENS = [
    "<", ">", "<![", "<!--", "-->", "<!", "<?", "</", "<a ", "<a href='", '<a href="', "'",
    '"', "=", "&", "&#", "&#x", "&gt;", "<base href=", "<title>", "</title>", "<script>",
    "data-yanked", "data-requires-python=", "#sha256=", "file:///etc/passwd", "http://[::1",
    "javascript:", "../", "%2F", "%00", "\x00", "\ufffd", "\ud800", "[", "]", "{", "}",
    ":", ",", "null", "true", "1e999", "-", "--hash", "--hash=", "sha256:", "-r", "-c",
    "\\", "\\\n", "#", " #", "\n", "\r", "\t", "\x0b", "\x0c", "\u2028", ";", "@", "==",
    "===", "~=", ".*", "extra ==", "python_version", "(", ")", "[x]", "\ufeff",
]


# -- mutation -------------------------------------------------------------------------------

def mutate_text(rng: random.Random, seeds: list[str]) -> str:
    s = rng.choice(seeds)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        op = rng.randrange(9)
        i = rng.randrange(len(s) + 1)
        if op == 0:
            s = s[:i] + rng.choice(TOKENS) + s[i:]
        elif op == 1:
            s = s[:i] + chr(rng.choice((rng.randrange(128), rng.randrange(0x110000)))) + s[i:]
        elif op == 2:
            j = rng.randrange(i, len(s) + 1)
            s = s[:i] + s[j:]
        elif op == 3:
            j = rng.randrange(i, min(len(s), i + 40) + 1)
            s = s[:i] + s[i:j] * rng.randrange(2, 6) + s[i:]
        elif op == 4:
            s = s[:i] + rng.choice(TOKENS) * rng.choice((2, 10, 100, 1000, 3000)) + s[i:]
        elif op == 5:
            other = rng.choice(seeds)
            s = s[:i] + other[rng.randrange(len(other) + 1):]
        elif op == 6:
            s = s[:i]
        elif op == 7:
            s = "".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 60)))
        else:
            s = s[:i] + "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(8))) \
                + s[i:]
    return s


def to_bytes(rng: random.Random, text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.2:
        b = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    if rng.random() < 0.05:
        data = rng.choice((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00")) + data
    return data


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, -1, 1, 2**70, 10**30))
    if kind == 3:
        return rng.choice((0.5, float("inf"), float("nan"), -0.0))
    if kind in (4, 5):
        return rng.choice(["", "demo", "1.0", "2.0", H, "demo-1.0.tar.gz", "../x.tar.gz",
                           "file:///etc/passwd", ">=3", "\x00", "http://[::1", "x" * 300])
    if kind == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        keys = ["meta", "name", "files", "api-version", "filename", "url", "hashes", "sha256",
                "requires-python", "yanked", "size", "core-metadata", "versions", "x"]
        return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [[[[random_json(rng, depth + 4)]]]]


def mutate_json(rng: random.Random, seeds: list[Any]) -> Any:
    doc = json.loads(json.dumps(rng.choice(seeds)))
    for _ in range(rng.choice((1, 1, 2, 4))):
        node, path = doc, []
        while isinstance(node, dict | list) and node and rng.random() < 0.75:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            doc = random_json(rng)
            continue
        parent, key = path[-1]
        op = rng.randrange(3)
        if op == 0:
            parent[key] = random_json(rng)
        elif op == 1 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, list):
            parent.append(random_json(rng))
        else:
            parent[rng.choice(["extra", "yanked", "hashes", "meta"])] = random_json(rng)
    return doc


# -- targets --------------------------------------------------------------------------------

@dataclass
class Target_:
    name: str
    function: str
    make: Callable[[random.Random], Any]
    run: Callable[[Any], Any]


def _pipeline(page: Any) -> None:
    """What the resolver does with a parsed page: candidates, a choice, error versions."""
    target = Target.current()
    from packaging.specifiers import SpecifierSet

    cands = sdist_candidates(page, target)
    for spec in ("", "==1.0", ">=2"):
        choose(cands, SpecifierSet(spec))
    available_versions(page, target)


class _Answers:
    """A server on 127.0.0.1 that answers every request with the current input."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, headers, body = outer.answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client closing its connection is no news

        self.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"


def mutate_answer(rng: random.Random) -> tuple[int, dict[str, str], bytes]:
    status = rng.choice((200, 200, 200, 200, 301, 302, 303, 307, 308, 304, 400, 403, 404,
                         410, 429, 500, 503, 999))
    if rng.random() < 0.01:
        status = 199  # an informational answer and no final one: the client times out
    headers: dict[str, str] = {}
    ctype = rng.choice(("application/vnd.pypi.simple.v1+json", "text/html",
                        "text/html; charset=latin-1", "text/html; charset=bogus-7",
                        "application/vnd.pypi.simple.v1+json; charset=utf-16", "", "x/y"))
    if ctype:
        headers["Content-Type"] = ctype
    if 300 <= status < 400 or rng.random() < 0.05:
        headers["Location"] = rng.choice(("/simple/demo/", "file:///etc/passwd", "http://[::1",
                                          "ftp://x.invalid/", "", "//127.0.0.1:1/x",
                                          "/simple/other/", "\x00"))
    if rng.random() < 0.05:
        headers["Content-Encoding"] = rng.choice(("gzip", "br", "deflate", "zstd", "x"))
    if "json" in ctype:
        body = to_bytes(rng, mutate_text(rng, [json.dumps(s) for s in JSON_SEEDS]))
    else:
        body = to_bytes(rng, mutate_text(rng, HTML_SEEDS))
    return status, headers, body


def make_targets(workdir: Path) -> list[Target_]:
    for name, text in HELPER_FILES.items():
        (workdir / name).write_text(text)
    req = workdir / "req.txt"

    def run_reqfile(data: bytes) -> Any:
        req.write_bytes(data)
        return read_files([req], [workdir / "cons.txt"])

    def run_html(text: str) -> Any:
        page = parse_html("demo", PAGE_URL, text)
        _pipeline(page)
        return page

    def run_json_text(data: bytes) -> Any:
        page = parse_json_text("demo", PAGE_URL, data)
        _pipeline(page)
        return page

    def run_json_value(value: Any) -> Any:
        page = parse_json("demo", PAGE_URL, value)
        _pipeline(page)
        return page

    json_texts = [json.dumps(s, indent=1) for s in JSON_SEEDS]
    answers: list[_Answers] = []
    clients: list[Any] = []

    def run_client(answer: tuple[int, dict[str, str], bytes]) -> Any:
        from wheelstrap.index.client import IndexClient

        if not answers:
            answers.append(_Answers())
            clients.append(IndexClient(answers[0].url, retries=0, deadline=1, timeout=0.5,
                                       sleep=lambda s: None))
        answers[0].answer = answer
        page = clients[0].project_page("demo")
        if page is not None:
            _pipeline(page)
        return page

    return [
        Target_("html", "simple.parse_html", lambda r: mutate_text(r, HTML_SEEDS), run_html),
        Target_("json-text", "simple.parse_json_text",
                lambda r: to_bytes(r, mutate_text(r, json_texts)), run_json_text),
        Target_("json-value", "simple.parse_json", lambda r: mutate_json(r, JSON_SEEDS),
                run_json_value),
        Target_("reqfile", "reqfiles.read_files",
                lambda r: to_bytes(r, mutate_text(r, REQ_SEEDS)), run_reqfile),
        Target_("requirement", "reqfiles.parse_requirement",
                lambda r: mutate_text(r, REQ_LINES), parse_requirement),
        Target_("index-answer", "client.project_page", mutate_answer, run_client),
    ]


# -- the campaign ---------------------------------------------------------------------------

class _Hang(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


@dataclass
class Tally:
    inputs: int = 0
    accepted: int = 0
    clean: int = 0
    hangs: int = 0
    slowest: float = 0.0
    internal: dict[str, tuple[int, Any]] = field(default_factory=dict)
    hang_inputs: list[Any] = field(default_factory=list)

    @property
    def internal_count(self) -> int:
        return sum(n for n, _ in self.internal.values())


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes) else len(json.dumps(value, default=str))


def _place(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "wheelstrap" in f.filename] or frames
    f = own[-1]
    return f"{type(exc).__name__} at {Path(f.filename).name}:{f.lineno}"


def campaign(target: Target_, rng: random.Random, inputs: int, seconds: float | None,
             hang: float) -> Tally:
    tally = Tally()
    stop = time.monotonic() + seconds if seconds else None
    while (tally.inputs < inputs) if stop is None else (time.monotonic() < stop):
        value = target.make(rng)
        tally.inputs += 1
        signal.setitimer(signal.ITIMER_REAL, hang)
        start = time.perf_counter()
        try:
            target.run(value)
        except _Hang:
            tally.hangs += 1
            if len(tally.hang_inputs) < 3:
                tally.hang_inputs.append(value)
            continue
        except WheelstrapError:
            tally.clean += 1
        except Exception as exc:
            key = _place(exc)
            count, smallest = tally.internal.get(key, (0, value))
            if _size(value) < _size(smallest):
                smallest = value
            tally.internal[key] = (count + 1, smallest)
        else:
            tally.accepted += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        tally.slowest = max(tally.slowest, time.perf_counter() - start)
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=20_000, help="inputs per target")
    ap.add_argument("--seconds", type=float, help="run each target this long instead")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang", type=float, default=5.0, help="seconds that make a hang")
    ap.add_argument("--only", help="comma-separated target names")
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    found = False
    total = 0
    with tempfile.TemporaryDirectory(prefix="wheelstrap-fuzz-") as tmp:
        targets = make_targets(Path(tmp))
        wanted = set(args.only.split(",")) if args.only else {t.name for t in targets}
        print(f"seed {args.seed}; a hang is an input taking more than {args.hang:g} s\n")
        print(f"| {'input':<12} | {'function':<27} | {'inputs':>9} | {'accepted':>9} | "
              f"{'clean errors':>12} | {'internal':>8} | {'hangs':>5} | {'slowest':>8} |")
        print(f"|{'-' * 14}|{'-' * 29}|{'-' * 11}|{'-' * 11}|{'-' * 14}|{'-' * 10}|"
              f"{'-' * 7}|{'-' * 10}|")
        details: list[str] = []
        for i, t in enumerate(targets):
            if t.name not in wanted:
                continue
            tally = campaign(t, random.Random(args.seed * 1000 + i), args.inputs,
                             args.seconds, args.hang)
            total += tally.inputs
            print(f"| {t.name:<12} | {t.function:<27} | {tally.inputs:>9,} | "
                  f"{tally.accepted:>9,} | {tally.clean:>12,} | {tally.internal_count:>8,} | "
                  f"{tally.hangs:>5} | {tally.slowest:>7.3f}s |", flush=True)
            for where, (count, smallest) in sorted(tally.internal.items()):
                found = True
                details.append(f"{t.name}: {count} x {where}; smallest input: "
                               f"{smallest!r:.400}")
            for value in tally.hang_inputs:
                found = True
                details.append(f"{t.name}: hang on {value!r:.400}")
        print(f"\n{total:,} inputs in total.")
        for line in details:
            print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
