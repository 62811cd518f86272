"""Two PEP 517 hooks in one interpreter: ``get_requires_for_build_wheel``, then, when it
asks for nothing more, ``build_wheel``.

wheelstrap runs this file as a script with the build environment's interpreter, inside
the build sandbox, in the source tree: ``python hookdriver.py CONTROL_DIR``.  It reads
``CONTROL_DIR/input.json`` (``backend``, ``backend_path``, ``config_settings``,
``wheel_directory``, ``build``) and writes ``CONTROL_DIR/output.json`` after each hook,
so that wheelstrap learns the build requirements even when ``build_wheel`` then fails:

- ``{"unavailable": text}``: the backend could not be imported;
- ``{"requires": [...], "times": {...}}`` after the first hook;
- ``"attempted"``: whether it goes on; then ``"wheel": name``, or ``"missing": "build_wheel"``.

It goes on to ``build_wheel`` only when every requirement the first hook returned is
inert: guarded by a marker of the one form ``extra == "name"``, false for a build, which
asks for no extras (flit returns a module's optional dependencies so).  Anything else
stops it, and wheelstrap, which evaluates markers properly, decides.

A backend that fails raises, and the process ends with its traceback in the log and a
non-zero status.  The file lies alone in its folder, since a script's folder leads
``sys.path``.  It imports nothing from wheelstrap (it runs in an environment that holds
only the build requirements) and keeps to the standard library.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time

# Modules only some builds need are imported where they are used: the interpreter
# starts once per build, and a small backend imports less than the driver would.
_EXTRA_ONLY = r"""\s*extra\s*==\s*(["'])[A-Za-z0-9._-]+\1\s*"""


class _Unavailable(Exception):
    pass


def _inert(requirement: str) -> bool:
    import re

    _, sep, marker = requirement.partition(";")
    return bool(sep) and re.fullmatch(_EXTRA_ONLY, marker) is not None


def _write(control: str, data: dict[str, object]) -> None:
    tmp = os.path.join(control, "output.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, os.path.join(control, "output.json"))


def _load(spec: str, backend_path: list[str] | None) -> object:
    """The backend object named by ``spec`` (``module:object.attr``); with
    ``backend_path``, the module must come from one of those folders of the tree."""
    module_name, _, attrs = spec.partition(":")
    folders = []
    if backend_path is not None:
        folders = [os.path.abspath(p) for p in backend_path]
        sys.path[:0] = folders
    try:
        obj = importlib.import_module(module_name.strip())
    except Exception:
        import traceback

        raise _Unavailable(traceback.format_exc()) from None
    if folders:
        origin = os.path.abspath(getattr(obj, "__file__", None) or "")
        if not any(origin.startswith(f + os.sep) for f in folders):
            raise _Unavailable(f"the backend {module_name} was imported from {origin}, "
                               f"not from its backend-path {backend_path}")
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj


def main() -> None:
    control = sys.argv[1]
    with open(os.path.join(control, "input.json"), encoding="utf-8") as fh:
        given = json.load(fh)
    config = given["config_settings"]
    try:
        backend = _load(given["backend"], given["backend_path"])
    except _Unavailable as exc:
        _write(control, {"unavailable": str(exc)})
        return
    times: dict[str, float] = {}
    result: dict[str, object] = {"times": times}
    start = time.monotonic()
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    requires = hook(config) if hook is not None else []
    times["get_requires_for_build_wheel"] = time.monotonic() - start
    if not (isinstance(requires, list) and all(isinstance(r, str) for r in requires)):
        result["invalid"] = repr(requires)[:1000]
        _write(control, result)
        return
    result["requires"] = requires
    result["attempted"] = given["build"] and all(_inert(r) for r in requires)
    _write(control, result)
    if not result["attempted"]:
        return
    build = getattr(backend, "build_wheel", None)
    if build is None:
        result["missing"] = "build_wheel"
        _write(control, result)
        return
    start = time.monotonic()
    name = build(given["wheel_directory"], config, None)
    times["build_wheel"] = time.monotonic() - start
    result["wheel"] = name if isinstance(name, str) else repr(name)[:1000]
    _write(control, result)


if __name__ == "__main__":
    main()
