"""Seed manifests: every entry checked, wheels only from inside the store."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from wheelstrap.errors import UserInputError
from wheelstrap.seeds.store import load_store, read_manifest

META = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
WHEEL = "demo-1.0-py3-none-any.whl"


def make_store(tmp: Path, entry: str, manifest_head: str = "version = 1\n") -> Path:
    store = tmp / "store"
    store.mkdir(exist_ok=True)
    with zipfile.ZipFile(store / WHEEL, "w") as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", META)
    digest = hashlib.sha256((store / WHEEL).read_bytes()).hexdigest()
    (store / "seeds.toml").write_text(manifest_head + entry.replace("@SHA@", digest))
    return store


GOOD = (f'[[seed]]\nname = "demo"\nversion = "1.0"\nwheel = "{WHEEL}"\nsha256 = "@SHA@"\n'
        'origin = "test"\n')


def test_good_store(tmp_path):
    [v] = load_store(make_store(tmp_path, GOOD))
    assert v.seed.path == tmp_path / "store" / WHEEL


@pytest.mark.parametrize("wheel", ["../elsewhere/demo-1.0-py3-none-any.whl",
                                   "/elsewhere/demo-1.0-py3-none-any.whl",
                                   "sub/demo-1.0-py3-none-any.whl", "..", "."])
def test_a_wheel_outside_the_store_is_refused(tmp_path, wheel):
    elsewhere = tmp_path / "elsewhere"
    store = make_store(tmp_path, GOOD.replace(f'"{WHEEL}"', f'"{wheel}"'
                                              .replace("/elsewhere", str(elsewhere))))
    elsewhere.mkdir()
    shutil.copy(store / WHEEL, elsewhere / WHEEL)
    with pytest.raises(UserInputError) as info:
        load_store(store)
    assert "is not a plain file name in the store" in info.value.message or \
        "is not a wheel file name" in info.value.message, info.value.message


def test_a_symlinked_wheel_is_refused(tmp_path):
    store = make_store(tmp_path, GOOD)
    (tmp_path / "real.whl").write_bytes((store / WHEEL).read_bytes())
    (store / WHEEL).unlink()
    (store / WHEEL).symlink_to(tmp_path / "real.whl")
    with pytest.raises(UserInputError, match="symbolic link"):
        load_store(store)


@pytest.mark.parametrize("entry, needle", [
    (GOOD.replace('"demo"', "3"), "'name' is a int"),
    (GOOD.replace('"1.0"', '"one"'), "is not a version"),
    (GOOD.replace('"@SHA@"', '"abc"'), "is not 64 hexadecimal digits"),
    (GOOD.replace('"@SHA@"', "{x = 1}"), "'sha256' is a dict"),
    (GOOD.replace('origin = "test"', "origin = 1"), "origin is a int"),
    (GOOD.replace('origin = "test"', "provenance = 1"), "provenance is a int"),
    (GOOD.replace('name = "demo"\n', ""), "has no 'name'"),
    (GOOD + "extra = 1\n", "unknown keys 'extra'"),
    (GOOD.replace('"demo"', '"de mo"'), "is not a project name"),
    (GOOD + GOOD, "a second time"),
    ("seed = 3\n", "not an array of tables"),
    ("seed = [1]\n", "is a int, not a table"),
    ("seed = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("x = " + "9" * 5000 + "\n", "cannot be read"),
])
def test_malformed_manifest_is_a_clean_error(tmp_path, entry, needle):
    store = make_store(tmp_path, entry)
    with pytest.raises(UserInputError) as info:
        read_manifest(store)
    assert needle in info.value.message, info.value.message
    assert info.value.hint


@pytest.mark.parametrize("head", ["version = true\n", "version = '1'\n", "", "version = 2\n"])
def test_wrong_manifest_version(tmp_path, head):
    with pytest.raises(UserInputError, match="expected 1"):
        read_manifest(make_store(tmp_path, GOOD, head))


def test_non_utf8_manifest(tmp_path):
    store = make_store(tmp_path, GOOD)
    (store / "seeds.toml").write_bytes(b"version = 1\n# \xff\n")
    with pytest.raises(UserInputError, match="cannot be read"):
        read_manifest(store)


def test_a_wheel_name_too_long_for_the_filesystem(tmp_path):
    long = "demo-1.0-py3-none-any" + "9" * 300 + ".whl"
    store = make_store(tmp_path, GOOD.replace(f'"{WHEEL}"', f'"{long}"'))
    with pytest.raises(UserInputError, match="not a plain file name"):
        load_store(store)


def test_a_version_of_thousands_of_digits(tmp_path):
    store = make_store(tmp_path, GOOD.replace('"1.0"', '"1.' + "9" * 5000 + '"'))
    with pytest.raises(UserInputError, match="is not a version"):
        read_manifest(store)
