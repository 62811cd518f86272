"""The ``wheelstrap`` program: the console script and ``python -m wheelstrap``.

Python's cyclic garbage collector is held while the program starts.  Importing makes many
objects and no garbage, and collecting them over and over took a fifth of the start-up
(and start-up is part of every run's wall time).  The CLI lets the collector go again
where the real work begins (:func:`wheelstrap.ui.cli.start_collecting`), with what start-up
made frozen, so that later collections skip it.  When the program ends, what is left is
frozen too: the last collection before the process exits would only walk it.
"""

from __future__ import annotations

import gc


def run() -> None:
    gc.disable()
    from wheelstrap.ui import cli

    cli.collector_held = True
    try:
        cli.main()
    finally:
        cli.start_collecting()
        gc.freeze()
