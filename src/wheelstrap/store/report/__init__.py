"""``OUT/report.html``: one self-contained page about a run (no network, no CDN).

:func:`render` is pure: it takes the documents of a run (:class:`RunDocs`) and returns
the page.  :func:`load_docs` reads them from OUT; :func:`write_report` does both and
writes ``OUT/report.html`` atomically.

The page (``report.html``, ``report.css``, ``report.js``, files of this package) holds
one JSON payload (:func:`build_payload`, module ``payload``) and a small script of our
own that draws from it:

- a summary: targets, counts, time, seeds, stage-0 wheels, prebuilt wheels, strictness;
- the dependency graph, laid out in layers (longest path from the targets, after
  dropping the back edges of a depth-first search; order inside a layer by two
  barycenter sweeps) as SVG.  Build edges are dashed blue, install edges grey, cycle
  members and the edges that close each cycle purple (failed packages are red).  A graph
  of at most ``DRAW_LIMIT`` packages is drawn whole.  A larger one is not: a few
  thousand boxes are unreadable, so the view starts with the build cycles and the
  targets, and every package is in a searchable list; choosing a package draws its
  neighbourhood (what it requires, what requires it, and its chain from a target);
- the details of the chosen package: requirement chain, requirements and dependents,
  sdist and wheel hashes, build environment, cycle stages, provenance, timings, logs;
- a timeline from ``events.jsonl`` (module ``timeline``): one bar per phase, one row per
  worker, the critical path (the longest path by measured duration through the build
  DAG) outlined, and the longest builds;
- failures, with the error, the hint, the tail of the log and what they blocked.

Every optional document may be missing (an older run, a run that stopped early): its
section then says so.
"""

from wheelstrap.store.report.docs import RunDocs, load_docs
from wheelstrap.store.report.page import render, write_report
from wheelstrap.store.report.payload import DRAW_LIMIT, build_payload

__all__ = ["DRAW_LIMIT", "RunDocs", "build_payload", "load_docs", "render", "write_report"]
