"""The page: ``report.html`` with ``report.css``, ``report.js`` and the payload inlined,
so that ``OUT/report.html`` is one self-contained file (no network, no CDN)."""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from wheelstrap.fsutil import atomic_write_text
from wheelstrap.store.report.docs import RunDocs, load_docs
from wheelstrap.store.report.payload import build_payload

_SLOT = re.compile(r"@(TITLE|CSS|JS|DATA)@")


@cache
def asset(name: str) -> str:
    """A file of this package: ``report.html``, ``report.css`` or ``report.js``."""
    return files("wheelstrap.store.report").joinpath(name).read_text("utf-8")


def json_for_script(data: Any) -> str:
    """JSON that is safe inside <script>: no '<', so no '</script>' or '<!--'."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace(
        "<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(docs: RunDocs) -> str:
    """The whole page.  Pure.  Each slot of the template is filled once: nothing that
    fills a slot is searched for slots again."""
    fill = {"TITLE": html.escape(docs.title), "CSS": asset("report.css"),
            "JS": asset("report.js"), "DATA": json_for_script(build_payload(docs))}
    return _SLOT.sub(lambda m: fill[m.group(1)], asset("report.html"))


def write_report(out: Path) -> Path:
    """(Re)write ``OUT/report.html`` from the documents in OUT."""
    dest = out / "report.html"
    atomic_write_text(dest, render(load_docs(out)))
    return dest
