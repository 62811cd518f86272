"""A hostile PEP 517 backend: the tiny backend, preceded in each hook by attacks.

Shipped in-tree as ``_backend/tinybackend.py`` next to the real tiny backend
(``_backend/tinybackend_impl.py``); :func:`scenario.hostile` makes such a package.  The
attacks come from ``hostile.json`` at the root of the sdist:

- ``write``: paths to create or overwrite (a planted wheel is just a path in
  ``OUT/wheels``; a rewritten wheel, the path of one already there);
- ``connect``: UNIX sockets to connect to (``@name`` for an abstract one), sending
  ``hostile`` once connected;
- ``daemon``: a token; a double-forked daemon carrying it in its command line stays
  behind and keeps trying to write ``daemon_write`` (paths) for a minute;
- ``swap``: folders (relative to the hook's directory, the unpacked sdist) to replace
  with a symlink to ``swap_target``;
- ``hang``: the hook sleeps forever;
- ``forge``: ``build_wheel`` writes junk under this wheel file name and returns it;
- ``inject``: ``[path, text]`` pairs ``build_wheel`` adds to the wheel (and its RECORD);
- ``hooks``: which hooks attack (default both).

Every attempt and its outcome is printed (so it lands in the build log), and the
backend then builds its ordinary wheel, so an attack that fails leaves a correct build.
"""

import json
import os
import socket
import subprocess
import sys
import time

import tinybackend_impl as _tiny

get_requires_for_build_sdist = _tiny.get_requires_for_build_sdist


def _plan():
    with open("hostile.json", encoding="utf-8") as fh:
        return json.load(fh)


_DAEMON = """
import os, sys, time
paths = sys.argv[2:]
for _ in range(300):
    for p in paths:
        try:
            with open(p, "w") as fh:
                fh.write("written by a daemon left behind")
        except OSError:
            pass
    time.sleep(0.2)
"""


def _attack(hook):
    plan = _plan()
    if hook not in plan.get("hooks", [hook]):
        return
    for path in map(os.path.expanduser, plan.get("write", [])):
        try:
            with open(path, "wb") as fh:
                fh.write(b"PK\x05\x06" + b"\0" * 18)  # an empty zip, as good as a wheel
            print(f"hostile: wrote {path}", flush=True)
        except OSError as exc:
            print(f"hostile: could not write {path}: {exc}", flush=True)
    for address in plan.get("connect", []):
        target = "\0" + address[1:] if address.startswith("@") else address
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(target)
                s.sendall(b"hostile")
            print(f"hostile: connected to {address}", flush=True)
        except OSError as exc:
            print(f"hostile: could not connect to {address}: {exc}", flush=True)
    for rel in plan.get("swap", []):  # replace a folder of the build with a symlink
        path = os.path.normpath(os.path.join(os.getcwd(), rel))
        try:
            os.rename(path, path + ".old")
            os.symlink(plan["swap_target"], path)
            print(f"hostile: swapped {path}", flush=True)
        except OSError as exc:
            print(f"hostile: could not swap {path}: {exc}", flush=True)
    if plan.get("daemon"):
        if os.fork() == 0:  # the classic double fork, away from the hook's session
            os.setsid()
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.execv(sys.executable, [sys.executable, "-c", _DAEMON, plan["daemon"],
                                          *plan.get("daemon_write", [])])
            os._exit(0)
        time.sleep(0.5)
        print("hostile: left a daemon behind", flush=True)
    if plan.get("hang"):
        print("hostile: hanging", flush=True)
        subprocess.run(["sleep", "3600"])  # a child process too
        while True:
            time.sleep(3600)


def get_requires_for_build_wheel(config_settings=None):
    _attack("get_requires_for_build_wheel")
    return _tiny.get_requires_for_build_wheel(config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _attack("build_wheel")
    plan = _plan()
    if plan.get("forge"):  # report another project's wheel, written here
        name = plan["forge"]
        with open(os.path.join(wheel_directory, name), "wb") as fh:
            fh.write(b"PK\x05\x06" + b"\0" * 18)
        return name
    _tiny._INJECT[:] = [tuple(x) for x in plan.get("inject", [])]
    return _tiny.build_wheel(wheel_directory, config_settings, metadata_directory)
