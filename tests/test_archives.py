"""Unpacking archives others made: every hostile member type, tar and zip alike, with a
check that nothing lands outside the destination; bombs; link chains; corrupt archives."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from wheelstrap.dist.archives import parse_size, scan
from wheelstrap.dist.sources import unpack
from wheelstrap.errors import SourceError
from wheelstrap.model.limits import ArchiveLimits

TOP = "demo-1.0"
PYPROJECT = b'[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n'


# -- building archives --------------------------------------------------------------
# A member is (name, kind, payload): kind is "file", "dir", "symlink", "hardlink", "chr",
# "fifo"; payload is the data of a file or the target of a link.

Spec = list[tuple[str, str, bytes | str]]


def make_tar(path: Path, members: Spec, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size, data = len(payload), io.BytesIO(payload)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(payload)
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, data)
    return path


def make_zip(path: Path, members: Spec) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, kind, payload in members:
            info = zipfile.ZipInfo(name, (2023, 11, 14, 22, 13, 20))
            info.create_system = 3
            data = payload.encode() if isinstance(payload, str) else payload
            if kind == "file":
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            elif kind == "dir":
                info.filename = name.rstrip("/") + "/"
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            elif kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif kind == "chr":
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
            elif kind == "fifo":
                info.external_attr = (stat.S_IFIFO | 0o644) << 16
            else:
                raise AssertionError(f"zip has no {kind} members")
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def make(kind: str, tmp: Path, members: Spec) -> Path:
    if kind == "tar":
        return make_tar(tmp / f"{TOP}.tar.gz", members)
    return make_zip(tmp / f"{TOP}.zip", members)


BASE: Spec = [(f"{TOP}/pyproject.toml", "file", PYPROJECT),
              (f"{TOP}/demo/__init__.py", "file", b"x = 1\n")]


def assert_nothing_outside(base: Path, dest: Path) -> None:
    """Nothing beside ``dest`` under ``base``; no link below ``dest`` leading out."""
    assert [p.name for p in base.iterdir()] in ([], [dest.name]), list(base.iterdir())
    if not dest.exists():
        return
    real = dest.resolve()
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = Path(folder) / name
            if p.is_symlink():
                target = p.resolve()
                assert target == real or real in target.parents, (p, target)


def unpack_into(tmp: Path, archive: Path, **kw: object) -> tuple[Path, Path]:
    base = tmp / "base"
    base.mkdir()
    return base, base / "dest"


# -- hostile members: refused, for tar and for zip ------------------------------------

HOSTILE: dict[str, Spec] = {
    "dotdot": [(f"{TOP}/../../escape.txt", "file", b"x")],
    "dotdot-inside": [(f"{TOP}/a/../../../escape.txt", "file", b"x")],
    "absolute": [("/tmp/wheelstrap-evil", "file", b"x")],
    "backslash-dotdot": [(f"{TOP}\\..\\..\\escape.txt", "file", b"x")],
    "drive": [("C:/evil.txt", "file", b"x")],
    "symlink-out": [(f"{TOP}/link", "symlink", "../../../etc/passwd")],
    "symlink-absolute": [(f"{TOP}/link", "symlink", "/etc/passwd")],
    # the top directory itself a link to its parent: the project root would be outside
    "top-dir-link": [(f"{TOP}/", "symlink", ".."), (f"{TOP}/x.py", "file", b"x")],
    "top-dir-link-alone": [(TOP, "symlink", "..")],
    # a file written through a link that is itself inside the tree
    "file-below-link": [(f"{TOP}/sub", "symlink", "."), (f"{TOP}/sub/x.py", "file", b"x")],
    # a chain of links, each harmless alone, resolving outside at the end
    "link-chain": [(f"{TOP}/l{i}", "symlink", f"l{i + 1}") for i in range(30)]
    + [(f"{TOP}/l30", "symlink", "../..")],
    "link-through-link": [(f"{TOP}/up", "symlink", ".."), (f"{TOP}/out", "symlink", "up/..")],
    "link-loop": [(f"{TOP}/a", "symlink", "b"), (f"{TOP}/b", "symlink", "a")],
    "link-too-long-chain": [(f"{TOP}/l{i}", "symlink", f"l{i + 1}") for i in range(60)]
    + [(f"{TOP}/l60", "file", b"x")],
    "char-device": [(f"{TOP}/dev", "chr", b"")],
    "fifo": [(f"{TOP}/fifo", "fifo", b"")],
    "link-and-file-same-name": [(f"{TOP}/x", "file", b"x"), (f"{TOP}/x", "symlink", "y")],
    "hardlink-out": [(f"{TOP}/h", "hardlink", "../../etc/passwd")],
    "hardlink-to-nothing": [(f"{TOP}/h", "hardlink", f"{TOP}/missing")],
    "hardlink-to-link": [(f"{TOP}/s", "symlink", "demo"), (f"{TOP}/h", "hardlink", f"{TOP}/s")],
}


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("kind, case", [
    (kind, case) for case in sorted(HOSTILE) for kind in ("tar", "zip")
    if not (kind == "zip" and case.startswith("hardlink"))  # zip has no hard links
])
def test_hostile_member_is_refused_and_nothing_lands_outside(tmp_path, kind, case):
    archive = make(kind, tmp_path, BASE + HOSTILE[case])
    base, dest = unpack_into(tmp_path, archive)
    with pytest.raises(SourceError) as info:
        unpack(archive, dest)
    assert "hostile member" in info.value.message, info.value.message
    assert "nothing was unpacked" in info.value.message
    assert info.value.hint
    assert not dest.exists()
    assert_nothing_outside(base, dest)
    assert not (tmp_path / "escape.txt").exists()
    assert not (base / "escape.txt").exists()


def test_absolute_member_does_not_land_at_its_absolute_path(tmp_path):
    # Python's data filter would strip the leading "/" and extract it below dest;
    # wheelstrap's own rule refuses the archive instead.
    target = tmp_path / "abs-target.txt"
    archive = make_tar(tmp_path / f"{TOP}.tar.gz", [*BASE, (str(target), "file", b"x")])
    base, dest = unpack_into(tmp_path, archive)
    with pytest.raises(SourceError, match="an absolute path"):
        unpack(archive, dest)
    assert not target.exists()
    assert not any(base.rglob("abs-target.txt"))


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_good_archive_unpacks_with_its_root_and_inside_links(tmp_path, kind):
    members = [*BASE, (f"{TOP}/demo/data", "dir", b""),
               (f"{TOP}/demo/alias.py", "symlink", "__init__.py"),
               (f"{TOP}/demo/data/up", "symlink", "../../demo"),
               (f"{TOP}/script.sh", "file", b"#!/bin/sh\n")]
    archive = make(kind, tmp_path, members)
    base, dest = unpack_into(tmp_path, archive)
    src = unpack(archive, dest)
    assert src.root == dest / TOP
    assert (src.root / "pyproject.toml").read_bytes() == PYPROJECT
    assert (src.root / "demo" / "alias.py").read_bytes() == b"x = 1\n"
    assert os.readlink(src.root / "demo" / "data" / "up") == "../../demo"
    assert src.source_date_epoch == 1700000000
    mode = (src.root / "demo" / "__init__.py").stat().st_mode
    assert stat.S_IMODE(mode) == 0o644
    assert_nothing_outside(base, dest)


def test_setid_and_executable_bits(tmp_path):
    path = tmp_path / f"{TOP}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, mode in (("suid", 0o4755), ("exe", 0o755), ("plain", 0o600)):
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.mode, info.size = mode, 1
            tar.addfile(info, io.BytesIO(b"x"))
    src = unpack(path, tmp_path / "dest")
    assert stat.S_IMODE((src.root / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((src.root / "exe").stat().st_mode) == 0o755
    assert stat.S_IMODE((src.root / "plain").stat().st_mode) == 0o644


def test_hard_link_to_an_earlier_file_is_a_copy(tmp_path):
    archive = make_tar(tmp_path / f"{TOP}.tar.gz",
                       [*BASE, (f"{TOP}/copy.py", "hardlink", f"{TOP}/demo/__init__.py")])
    src = unpack(archive, tmp_path / "dest")
    assert (src.root / "copy.py").read_bytes() == b"x = 1\n"


def test_member_times_far_in_the_future_are_clamped(tmp_path):
    path = tmp_path / f"{TOP}.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{TOP}/late.py")
        info.mtime, info.size = 2**40, 1
        tar.addfile(info, io.BytesIO(b"x"))
    src = unpack(path, tmp_path / "dest")
    assert src.source_date_epoch == 4354819199  # the latest time a zip can record


# -- bombs and limits ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_decompression_bomb_is_refused_by_ratio(tmp_path, kind):
    archive = make(kind, tmp_path, [*BASE, (f"{TOP}/zeros", "file", b"\0" * (8 << 20))])
    assert archive.stat().st_size < 64 << 10
    limits = ArchiveLimits(max_ratio=50, ratio_floor=1 << 20)
    with pytest.raises(SourceError) as info:
        unpack(archive, tmp_path / "dest", limits=limits)
    assert "times its own size" in info.value.message
    assert "max_ratio" in (info.value.hint or "")
    assert not (tmp_path / "dest").exists()
    # raised limits let the same archive through
    unpack(archive, tmp_path / "dest", limits=ArchiveLimits(max_ratio=100_000))


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_total_size_and_member_count_caps(tmp_path, kind):
    archive = make(kind, tmp_path, [*BASE, *[(f"{TOP}/f{i}", "file", b"y" * 100)
                                           for i in range(20)]])
    with pytest.raises(SourceError, match="unpacks to more than 1000 bytes"):
        unpack(archive, tmp_path / "d1", limits=ArchiveLimits(max_unpacked_size=1000))
    with pytest.raises(SourceError, match="more than 10 members"):
        unpack(archive, tmp_path / "d2", limits=ArchiveLimits(max_members=10))
    unpack(archive, tmp_path / "d3")


def test_a_tar_bomb_is_refused_before_its_data_is_decompressed(tmp_path):
    """The cap is checked on the header: a member declaring more than the limit is never
    inflated (a 1 GiB member here would take seconds to inflate)."""
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(f"{TOP}/big")
        info.size = 1 << 30
        tar.addfile(info)  # header only: the data is missing, and is never read
    path = tmp_path / f"{TOP}.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(SourceError, match="unpacks to more than"):
        unpack(path, tmp_path / "dest", limits=ArchiveLimits(max_unpacked_size=1 << 20))


def test_zip_with_corrupt_member_data_is_a_clean_error(tmp_path):
    archive = make_zip(tmp_path / f"{TOP}.zip", [*BASE, (f"{TOP}/x", "file", os.urandom(4000))])
    data = bytearray(archive.read_bytes())
    at = data.index(b"demo-1.0/x") + 2000  # inside the member's compressed data
    data[at:at + 10] = b"\xff" * 10
    archive.write_bytes(bytes(data))
    with pytest.raises(SourceError):
        unpack(archive, tmp_path / "dest")


# -- corrupt archives ------------------------------------------------------------------


@pytest.mark.parametrize("blob", [
    b"", b"not an archive", b"\x1f\x8b\x08\x00" + b"\0" * 20, b"PK\x03\x04" + b"\0" * 40,
    b"\xfd7zXZ\x00\x00" + b"\x01" * 30,
])
@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_corrupt_archive_is_a_clean_error(tmp_path, blob, suffix):
    path = tmp_path / f"{TOP}{suffix}"
    path.write_bytes(blob)
    with pytest.raises(SourceError) as info:
        unpack(path, tmp_path / "dest")
    assert "could not be read" in info.value.message
    assert info.value.hint
    assert not (tmp_path / "dest").exists()


def test_truncated_tar_gz_is_a_clean_error(tmp_path):
    archive = make_tar(tmp_path / f"{TOP}.tar.gz",
                       [*BASE, (f"{TOP}/big", "file", os.urandom(50_000))])
    archive.write_bytes(archive.read_bytes()[:20_000])
    with pytest.raises(SourceError):
        unpack(archive, tmp_path / "dest")


def test_encrypted_zip_member_is_refused(tmp_path):
    archive = make_zip(tmp_path / f"{TOP}.zip", BASE)
    data = bytearray(archive.read_bytes())
    # set the "encrypted" flag bit in the local and central headers of the first member
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.index(sig)
        flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flag_at] |= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="encrypted"):
        unpack(archive, tmp_path / "dest")


# -- scan: the same checks, for wheels and seeds ---------------------------------------


def test_scan_lists_members_without_writing(tmp_path):
    archive = make_zip(tmp_path / "x.zip", BASE)
    members = scan(archive)
    assert [(m.name, m.kind) for m in members] == [(f"{TOP}/pyproject.toml", "file"),
                                                   (f"{TOP}/demo/__init__.py", "file")]
    with pytest.raises(SourceError, match="hostile"):
        scan(make_zip(tmp_path / "y.zip", [("../x", "file", b"")]), what="wheel")


def test_parse_size():
    assert parse_size("512") == 512
    assert parse_size("4k") == 4096
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("1 M") == 1 << 20
    with pytest.raises(ValueError):
        parse_size("lots")


def test_a_huge_extended_tar_header_is_refused_before_it_is_read(tmp_path):
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("././@LongLink")
        info.type, info.size = tarfile.GNUTYPE_LONGNAME, 1 << 30
        tar.addfile(info)  # header only: the 1 GiB name is never there, never read
    path = tmp_path / f"{TOP}.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    with pytest.raises(SourceError, match="an extended header of 1073741824 bytes"):
        unpack(path, tmp_path / "dest")


def test_too_many_link_lookups_are_refused(tmp_path, monkeypatch):
    import wheelstrap.dist.archives as archives

    monkeypatch.setattr(archives, "MAX_LINK_STEPS", 50)
    links = [(f"{TOP}/l{i}", "symlink", "../" + TOP + "/demo") for i in range(20)]
    archive = make_tar(tmp_path / f"{TOP}.tar.gz", [*BASE, *links])
    with pytest.raises(SourceError, match="steps resolving"):
        unpack(archive, tmp_path / "dest")
    monkeypatch.undo()
    unpack(archive, tmp_path / "dest")


def test_a_very_long_member_name_is_refused(tmp_path):
    archive = make_tar(tmp_path / f"{TOP}.tar.gz", [*BASE, (f"{TOP}/" + "a/" * 3000 + "x",
                                                           "file", b"")])
    with pytest.raises(SourceError, match="a name of"):
        unpack(archive, tmp_path / "dest")


def test_a_zip_declaring_too_many_entries_is_refused_before_parsing(tmp_path):
    archive = make_zip(tmp_path / f"{TOP}.zip", [*BASE, *[(f"{TOP}/f{i}", "file", b"")
                                                        for i in range(30)]])
    with pytest.raises(SourceError, match="more than 10 members"):
        unpack(archive, tmp_path / "dest", limits=ArchiveLimits(max_members=10))


def test_an_archive_bigger_than_the_size_cap_is_refused_unread(tmp_path):
    archive = make_tar(tmp_path / f"{TOP}.tar.gz",
                       [*BASE, (f"{TOP}/r", "file", os.urandom(4 << 20))])
    with pytest.raises(SourceError, match="more than it may unpack to"):
        unpack(archive, tmp_path / "dest", limits=ArchiveLimits(max_unpacked_size=1 << 20))
