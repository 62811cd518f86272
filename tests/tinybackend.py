"""A tiny PEP 517 backend used by the test scenarios.

It is shipped inside synthetic sdists, either in-tree (``backend-path``) or as the
importable module of a backend package that other packages build with.  It reads
``[project]`` (name, version, dependencies, requires-python) and ``[tool.tiny]``:
``dynamic-requires`` (returned by ``get_requires_for_build_wheel``), ``sdist-requires``
(returned by ``get_requires_for_build_sdist``, and needed by ``build_sdist``) and
``packages`` (folders or modules to put in the wheel), ``handshake`` (see
``_handshake``); entry points come from
``[project.entry-points]`` and ``[project.scripts]``.  Wheels are deterministic:
entries sorted, timestamps from ``SOURCE_DATE_EPOCH``.
"""

import base64
import hashlib
import os
import time
import tomllib
import zipfile

_INJECT = []  # (path, text) pairs a tampered copy adds to every wheel it builds


def _config():
    with open("pyproject.toml", "rb") as fh:
        data = tomllib.load(fh)
    return data["project"], data.get("tool", {}).get("tiny", {})


def get_requires_for_build_wheel(config_settings=None):
    return list(_config()[1].get("dynamic-requires", []))


def get_requires_for_build_sdist(config_settings=None):
    return list(_config()[1].get("sdist-requires", []))


def build_sdist(sdist_directory, config_settings=None):
    """The tree as it is (minus .git and bytecode), PKG-INFO added, deterministic; the
    ``sdist-requires`` must be installed."""
    import gzip
    import importlib.metadata
    import io
    import re
    import tarfile

    project, tiny = _config()
    for name in tiny.get("sdist-requires", []):
        importlib.metadata.distribution(name)  # PackageNotFoundError: not installed
    dist = project["name"].replace("-", "_").replace(".", "_")
    # a dynamic version: as setuptools-scm does without .git, from its variable
    scm = "SETUPTOOLS_SCM_PRETEND_VERSION_FOR_" + re.sub(r"[^A-Z0-9]", "_",
                                                         project["name"].upper())
    version = project.get("version") or os.environ[scm]
    top = f"{dist}-{version}"
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    files = {"PKG-INFO": (f"Metadata-Version: 2.1\nName: {project['name']}\n"
                          f"Version: {version}\n").encode()}
    for root, dirs, names in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for f in sorted(names):
            path = os.path.join(root, f)[2:].replace(os.sep, "/")
            if path != "PKG-INFO" and not f.endswith(".pyc"):
                files[path] = _read(path)
    if "version" not in project:  # the sdist states the version it was made with
        files["pyproject.toml"] = files["pyproject.toml"].replace(
            b'dynamic = ["version"]', f'version = "{version}"'.encode())
    filename = f"{top}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(files[path]), epoch, 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    with open(os.path.join(sdist_directory, filename), "wb") as fh, \
            gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return filename


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _files(packages):
    out = {}
    for entry in packages:
        if os.path.isfile(entry):
            out[entry] = _read(entry)
            continue
        for root, dirs, files in os.walk(entry):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(".pyc"):
                    continue
                path = os.path.join(root, f)
                out[path.replace(os.sep, "/")] = _read(path)
    return out


def _handshake():
    """``[tool.tiny] handshake``: say the build started (a file STARTED in the source
    tree, the one place a sandboxed build may write) and wait until GO appears there."""
    with open("STARTED", "w") as fh:
        fh.write(str(os.getpid()))
    deadline = time.monotonic() + 300
    while not os.path.exists("GO") and time.monotonic() < deadline:
        time.sleep(0.05)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project, tiny = _config()
    if tiny.get("handshake"):
        _handshake()
    name = project["name"]
    dist = name.replace("-", "_").replace(".", "_")
    version = project["version"]
    files = _files(tiny.get("packages", []))
    for path, text in _INJECT:
        files[path] = text.encode()
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if project.get("requires-python"):
        meta.append(f"Requires-Python: {project['requires-python']}")
    for dep in project.get("dependencies", []):
        meta.append(f"Requires-Dist: {dep}")
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        meta.append(f"Provides-Extra: {extra}")
        for dep in deps:
            marker = f'extra == "{extra}"'
            meta.append(f"Requires-Dist: {dep}; {marker}" if ";" not in dep
                        else f"Requires-Dist: {dep} and {marker}")
    meta += tiny.get("metadata", [])  # more header lines, as given (License..., Classifier...)
    di = f"{dist}-{version}.dist-info"
    files[f"{di}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{di}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: tinybackend\n"
                            b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    eps = dict(project.get("entry-points", {}))
    if project.get("scripts"):
        eps["console_scripts"] = project["scripts"]
    if eps:
        text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(items.items()))
                       for group, items in sorted(eps.items()))
        files[f"{di}/entry_points.txt"] = text.encode()
    record = []
    for path, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{di}/RECORD,,")
    files[f"{di}/RECORD"] = ("\n".join(record) + "\n").encode()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[path])
    return filename
