"""Validation of built wheels: each way a wheel can be broken or foreign is refused."""

from __future__ import annotations

import base64
import hashlib
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from packaging.tags import Tag, sys_tags

from wheelstrap.dist.validate import _probe_tags, interpreter_tags, validate_wheel
from wheelstrap.errors import BuildFailure, InvalidWheel, UserInputError

TAGS = frozenset(sys_tags())
DI = "demo-1.0.dist-info"
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: other>=2\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path, files: list[tuple[str, bytes]] | None = None, *,
               filename: str = "demo-1.0-py3-none-any.whl", record: str | None = "auto",
               extra_record: list[str] = (), skip_record: tuple[str, ...] = ()) -> Path:
    """A wheel with ``files`` (default: a module, METADATA and WHEEL) and a RECORD that
    is computed ("auto"), given as text, or absent (None)."""
    files = list(files if files is not None else [
        ("demo/__init__.py", b"X = 1\n"), (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL)])
    if record == "auto":
        lines = [f"{n},{_hash(d)},{len(d)}" for n, d in files if n not in skip_record]
        lines += [*extra_record, f"{DI}/RECORD,,"]
        files.append((f"{DI}/RECORD", ("\n".join(lines) + "\n").encode()))
    elif record is not None:
        files.append((f"{DI}/RECORD", record.encode()))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        for name, data in files:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return path


def refused(path: Path, name: str = "demo", version: str = "1.0",
            tags: frozenset[Tag] | None = TAGS) -> InvalidWheel:
    with pytest.raises(InvalidWheel) as info:
        validate_wheel(path, name, version, tags)
    exc = info.value
    assert isinstance(exc, BuildFailure)
    assert f"built for {name} {version} is not valid" in exc.message
    assert exc.problems and all(p in exc.message for p in exc.problems)
    return exc


def test_a_good_wheel_passes_and_says_what_it_requires(tmp_path):
    info = validate_wheel(make_wheel(tmp_path), "Demo", "1.0", TAGS)
    assert (info.name, str(info.version)) == ("demo", "1.0")
    assert [str(r) for r in info.requires_dist] == ["other>=2"]
    # with a signature file left unhashed, as the format allows
    path = make_wheel(tmp_path / "signed", [
        ("demo/__init__.py", b""), (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL),
        (f"{DI}/RECORD.jws", b"{}")], skip_record=(f"{DI}/RECORD.jws",))
    validate_wheel(path, "demo", "1.0", TAGS)


@pytest.mark.parametrize("entry, why", [
    ("../evil.py", "goes up with '..'"),
    ("demo/../../evil.py", "goes up with '..'"),
    ("/etc/evil.py", "is an absolute path"),
    ("C:/evil.py", "is an absolute path"),
    ("demo\\..\\..\\evil.py", "contains a backslash"),
    ("demo//evil.py", "is not a normalized relative path"),
    ("./demo/evil.py", "is not a normalized relative path"),
])
def test_hostile_entry_names_are_refused(tmp_path, entry, why):
    path = make_wheel(tmp_path, [("demo/__init__.py", b""), (entry, b"x"),
                                 (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL)])
    exc = refused(path)
    assert f"the entry {entry!r} {why}" in exc.problems


def test_duplicate_entries_are_refused(tmp_path):
    path = make_wheel(tmp_path, [("demo/__init__.py", b"A"), ("demo/__init__.py", b"B"),
                                 (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL)])
    exc = refused(path)
    assert "the entry 'demo/__init__.py' appears twice" in exc.problems


def test_a_missing_record_is_refused(tmp_path):
    exc = refused(make_wheel(tmp_path, record=None))
    assert exc.problems == (f"it has no {DI}/RECORD",)


def test_a_wrong_record_is_refused_with_every_problem(tmp_path):
    files = [("demo/__init__.py", b"X = 1\n"), ("demo/data.txt", b"data"),
             ("demo/extra.py", b""), (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL)]
    record = "\n".join([
        f"demo/__init__.py,{_hash(b'X = 2')},6",         # wrong hash
        f"demo/data.txt,{_hash(b'data')},5",             # wrong size
        "demo/ghost.py,sha256=abc,3",                    # not in the wheel
        f"{DI}/METADATA,md5=abc,{len(METADATA)}",        # md5 is not acceptable
        f"{DI}/WHEEL,{_hash(WHEEL)},{len(WHEEL)}",
        f"{DI}/WHEEL,{_hash(WHEEL)},{len(WHEEL)}",       # twice
        "short,row",
        f"{DI}/RECORD,,",
    ]) + "\n"
    exc = refused(make_wheel(tmp_path, files, record=record))
    assert set(exc.problems) == {
        "its RECORD has a row of 2 fields: 'short,row'",
        f"its RECORD lists {DI}/WHEEL twice",
        "its RECORD does not list demo/extra.py",
        "its RECORD lists demo/ghost.py, which the wheel does not hold",
        "the hash of demo/__init__.py does not match its RECORD",
        "the size of demo/data.txt is 4 bytes, its RECORD says 5",
        f"its RECORD gives {DI}/METADATA no acceptable hash (md5=abc)",
    }


def test_an_unhashed_file_is_refused(tmp_path):
    exc = refused(make_wheel(tmp_path, skip_record=("demo/__init__.py",),
                             extra_record=["demo/__init__.py,,"]))
    assert exc.problems == ("its RECORD gives demo/__init__.py no acceptable hash (none)",)


def test_a_wheel_of_another_name_or_version_is_refused(tmp_path):
    exc = refused(make_wheel(tmp_path), "victim", "1.0")
    assert exc.problems == ("the file name names the project demo, not victim",)
    exc = refused(make_wheel(tmp_path), "demo", "2.0")
    assert exc.problems == ("the file name says version 1.0, not 2.0",)
    # the file name agrees, the contents do not
    meta = METADATA.replace(b"Version: 1.0", b"Version: 1.1")
    path = make_wheel(tmp_path / "m", [("demo/__init__.py", b""), (f"{DI}/METADATA", meta),
                                       (f"{DI}/WHEEL", WHEEL)])
    assert refused(path).problems == ("its METADATA says demo 1.1, the file name demo 1.0",)
    other = "victim-1.0.dist-info"
    path = make_wheel(tmp_path / "d", [("demo/__init__.py", b""),
                                       (f"{other}/METADATA", METADATA),
                                       (f"{other}/WHEEL", WHEEL),
                                       (f"{other}/RECORD", b"")], record=None)
    assert f"its {other} directory is for another project or version" in refused(path).problems


def test_metadata_is_held_to_what_installers_rely_on(tmp_path):
    # setuptools wrote License-File under Metadata-Version 2.1 for years: accepted
    meta = METADATA + b"License-File: LICENSE\nDescription-Content-Type: text/weird\n"
    path = make_wheel(tmp_path, [("demo/__init__.py", b""), (f"{DI}/METADATA", meta),
                                 (f"{DI}/WHEEL", WHEEL)])
    validate_wheel(path, "demo", "1.0", TAGS)
    meta = METADATA + b"Requires-Dist: not a requirement!!\nRequires-Python: >=3.x\n"
    path = make_wheel(tmp_path / "bad", [("demo/__init__.py", b""), (f"{DI}/METADATA", meta),
                                         (f"{DI}/WHEEL", WHEEL)])
    problems = refused(path).problems
    assert len(problems) == 2
    assert all(p.startswith("its METADATA is invalid: ") for p in problems)


def test_incompatible_tags_are_refused(tmp_path):
    name = "demo-1.0-cp27-cp27mu-manylinux1_i686.whl"
    wheel = WHEEL.replace(b"py3-none-any", b"cp27-cp27mu-manylinux1_i686")
    path = make_wheel(tmp_path, [("demo/__init__.py", b""), (f"{DI}/METADATA", METADATA),
                                 (f"{DI}/WHEEL", wheel)], filename=name)
    exc = refused(path)
    assert exc.problems == ("none of its tags (cp27-cp27mu-manylinux1_i686) is supported by "
                            "the target",)
    validate_wheel(path, "demo", "1.0", None)  # no target: no tag check
    # WHEEL's Tag lines must agree with the file name
    path = make_wheel(tmp_path / "t", [("demo/__init__.py", b""), (f"{DI}/METADATA", METADATA),
                                       (f"{DI}/WHEEL", wheel)])
    assert refused(path).problems == (
        "the Tag lines of its WHEEL file disagree with its file name",)


def test_broken_files_are_refused(tmp_path):
    bad = tmp_path / "demo-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    assert refused(bad).problems[0].startswith("it is not a readable zip archive")
    assert "not a valid wheel file name" in refused(make_wheel(tmp_path, filename="demo.whl"),
                                                    ).problems[0]
    link = tmp_path / "l" / "demo-1.0-py3-none-any.whl"
    link.parent.mkdir()
    link.symlink_to(make_wheel(tmp_path / "real"))
    assert refused(link).problems == ("it is not a regular file",)
    path = make_wheel(tmp_path / "meta", [("demo/__init__.py", b""),
                                          (f"{DI}/METADATA", b"Name: demo\n"),
                                          (f"{DI}/WHEEL", b"Generator: x\n")])
    problems = refused(path).problems
    assert "its METADATA has Metadata-Version missing, not 1.x or 2.x" in problems
    assert "its WHEEL file has Wheel-Version missing, not 1.x" in problems
    assert "its WHEEL file has no valid Root-Is-Purelib" in problems
    path = make_wheel(tmp_path / "data", [("demo/__init__.py", b""),
                                          ("demo-1.0.data/evil/x", b""),
                                          (f"{DI}/METADATA", METADATA), (f"{DI}/WHEEL", WHEEL)])
    assert refused(path).problems == (
        "demo-1.0.data/evil is not a scheme a wheel may install to",)
    path = make_wheel(tmp_path / "big")
    with pytest.raises(InvalidWheel, match="unpacks to more than 10 bytes"):
        validate_wheel(path, "demo", "1.0", TAGS, max_unpacked=10)


def test_tags_of_an_interpreter():
    assert interpreter_tags() == tuple(sys_tags())
    assert interpreter_tags(sys.executable) == tuple(sys_tags())
    # another interpreter is asked in a subprocess (here: this one, asked that way)
    assert _probe_tags(sys.executable) == tuple(sys_tags())
    with pytest.raises(UserInputError, match="which wheel tags it supports"):
        interpreter_tags("/nonexistent/python")


def test_corrupt_or_encrypted_entries_are_refused(tmp_path):
    path = make_wheel(tmp_path)  # entries are stored: change a byte of the module
    data = path.read_bytes()
    path.write_bytes(data.replace(b"X = 1", b"Y = 1", 1))
    assert "Bad CRC-32" in refused(path).problems[0]
    path = make_wheel(tmp_path / "enc")  # an entry flagged as encrypted
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    path.write_bytes(bytes(data))
    assert refused(path).problems[0].startswith("it is not a readable zip archive")
