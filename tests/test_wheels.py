"""Reading a wheel's METADATA: only from the right .dist-info, bounded, clean errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from wheelstrap.dist.wheels import WheelFormatError, read_metadata
from wheelstrap.errors import SourceError
from wheelstrap.model.limits import ArchiveLimits

META = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: a>=1\n"


def wheel(tmp: Path, members: dict[str, str | bytes], name: str = "demo-1.0-py3-none-any.whl"
          ) -> Path:
    path = tmp / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data in members.items():
            zf.writestr(arc, data)
    return path


def test_good_wheel(tmp_path):
    info = read_metadata(wheel(tmp_path, {"demo-1.0.dist-info/METADATA": META,
                                          "demo/__init__.py": ""}))
    assert (info.name, str(info.version)) == ("demo", "1.0")
    assert [str(r) for r in info.requires_dist] == ["a>=1"]


@pytest.mark.parametrize("members, name, needle", [
    ({"other-2.0.dist-info/METADATA": META}, None, "does not match the file name"),
    ({"demo-1.0.dist-info/METADATA": META, "evil-1.0.dist-info/METADATA": META}, None,
     "has 2 METADATA files"),
    ({"demo/__init__.py": ""}, None, "has 0 METADATA files"),
    ({"demo-1.0.dist-info/METADATA": "Name: demo\n"}, None, "no 'version' field"),
    ({"demo-1.0.dist-info/METADATA": META.replace("a>=1", "!!")}, None, "invalid METADATA"),
    ({"demo-1.0.dist-info/METADATA": META + "Requires-Python: >=3\n"
      .replace(">=3", "lots")}, None, "invalid METADATA"),
    ({"demo-1.0.dist-info/METADATA": META}, "demo-2.0-py3-none-any.whl", "does not match"),
    ({"demo-1.0.dist-info/METADATA": META}, "demo.whl", "not a valid wheel filename"),
    ({"demo-1.0.dist-info/METADATA": META, "../../evil.py": ""}, None, "hostile member"),
    ({"demo-1.0.dist-info/METADATA": b"\xff\xfe" + META.encode()}, None, "METADATA"),
])
def test_bad_wheels_are_clean_errors(tmp_path, members, name, needle):
    path = wheel(tmp_path, members, name or "demo-1.0-py3-none-any.whl")
    with pytest.raises(WheelFormatError) as info:
        read_metadata(path)
    assert needle in info.value.message, info.value.message
    assert isinstance(info.value, SourceError) and info.value.hint


@pytest.mark.parametrize("blob", [b"", b"PK\x05\x06" + b"\0" * 18, b"junk" * 100])
def test_corrupt_wheel_is_a_clean_error(tmp_path, blob):
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(blob)
    with pytest.raises(WheelFormatError):
        read_metadata(path)


def test_metadata_bomb_is_refused(tmp_path):
    path = wheel(tmp_path, {"demo-1.0.dist-info/METADATA": META + "X: " + "y" * (17 << 20)})
    with pytest.raises(WheelFormatError, match="more than"):
        read_metadata(path)
    big = wheel(tmp_path, {"demo-1.0.dist-info/METADATA": META, "zeros": b"\0" * (4 << 20)},
                "demo-1.0-py3-none-any.whl")
    with pytest.raises(WheelFormatError, match="times its own size"):
        read_metadata(big, limits=ArchiveLimits(max_ratio=10, ratio_floor=1 << 20))


def test_a_version_of_thousands_of_digits_is_a_clean_error(tmp_path):
    meta = META.replace("Version: 1.0", "Version: 1." + "9" * 5000)
    with pytest.raises(WheelFormatError, match="invalid METADATA"):
        read_metadata(wheel(tmp_path, {"demo-1.0.dist-info/METADATA": meta}))
