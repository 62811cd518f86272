"""Patch files: header checks, application with GNU patch, failures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wheelstrap.dist.patching import PatchFile, UnsafePatch, apply_patches, patch_targets
from wheelstrap.errors import BuildFailure, UserInputError

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch missing")

PYPROJECT = """\
[build-system]
requires = ["python-sbom", "hatchling"]
build-backend = "hatchling.build"
"""

BUILD_SYSTEM = b"""\
diff --git a/pyproject.toml b/pyproject.toml
index 3b18e51..a8f9c2d 100644
--- a/pyproject.toml
+++ b/pyproject.toml
@@ -1,3 +1,3 @@
 [build-system]
-requires = ["python-sbom", "hatchling"]
+requires = ["hatchling"]
 build-backend = "hatchling.build"
--- a/src/new.py\t2024-01-01 00:00:00
+++ b/src/new.py\t2024-01-01 00:00:00
@@ -0,0 +1,2 @@
+-- not a header: a line of the new file
+--- nor this
"""


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj-1.0"
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return root


def test_targets_are_read_from_the_headers() -> None:
    assert patch_targets(BUILD_SYSTEM) == ("pyproject.toml", "src/new.py")
    deleted = b"--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    assert patch_targets(deleted) == ("old.txt",)
    renamed = b"diff --git a/x.py b/y.py\nsimilarity index 100%\nrename from x.py\nrename to y.py\n"
    assert patch_targets(renamed) == ("y.py",)
    crlf = b"--- a/w.txt\r\n+++ b/w.txt\r\n@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+c\r\n"
    assert patch_targets(crlf) == ("w.txt",)


@pytest.mark.parametrize(("data", "why"), [
    (b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "absolute path"),
    (b"--- a/../../x\n+++ b/../../x\n@@ -1 +1 @@\n-a\n+b\n", "contains '..'"),
    (b"--- a/x\n+++ b/x/../../y\n@@ -1 +1 @@\n-a\n+b\n", "contains '..'"),
    (b"diff --git a/x b/y\nrename from x\nrename to ../y\n", "contains '..'"),
    (b"diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc\n",
     "symbolic link"),
    (b"diff --git a/x b/x\nGIT binary patch\nliteral 0\n", "binary"),
    (b"Index: /etc/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "absolute path"),
    (b"just some text\n", "not a unified diff"),
    (b"*** a/x\n--- b/x\n***************\n", "not a unified diff"),
    (b"--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n", "cut short"),
    (b"--- x\n+++ x\n@@ -1 +1 @@\n-a\n+b\n", "nothing left after -p1"),
])
def test_unsafe_patches_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(UnsafePatch, match=why):
        PatchFile.from_bytes("p.patch", data)


def test_a_patch_applies_and_is_deterministic(tmp_path: Path) -> None:
    root = tree(tmp_path)
    log = tmp_path / "log" / "build.log"
    patch = PatchFile.from_bytes("drop-sbom.patch", BUILD_SYSTEM)
    apply_patches(root, [patch], log, package="proj 1.0", mtime=1_600_000_000)
    assert (root / "pyproject.toml").read_text() == PYPROJECT.replace('"python-sbom", ', "")
    assert (root / "src/new.py").read_text() == \
        "-- not a header: a line of the new file\n--- nor this\n"
    assert os.stat(root / "pyproject.toml").st_mtime == 1_600_000_000
    assert sorted(p.name for p in root.iterdir()) == ["pyproject.toml", "src"]  # no .orig/.rej
    text = log.read_text()
    assert "drop-sbom.patch" in text and patch.sha256 in text and "patching file" in text
    apply_patches(root, [], log, package="proj 1.0")  # nothing to do


def test_a_patch_that_does_not_apply_names_the_patch_and_file(tmp_path: Path) -> None:
    root = tree(tmp_path)
    (root / "pyproject.toml").write_text("[project]\nname = 'other'\n", encoding="utf-8")
    log = tmp_path / "build.log"
    with pytest.raises(BuildFailure) as info:
        apply_patches(root, [PatchFile.from_bytes("drop-sbom.patch", BUILD_SYSTEM)], log,
                      package="proj 1.0")
    err = info.value
    assert "drop-sbom.patch" in err.message and "proj 1.0" in err.message
    assert "pyproject.toml" in err.message
    assert err.log == str(log) and "FAILED" in err.tail and err.hint
    assert not list(root.glob("*.rej")) and not list(root.glob("*.orig"))


def test_an_already_applied_patch_fails(tmp_path: Path) -> None:
    root = tree(tmp_path)
    patch = PatchFile.from_bytes("drop-sbom.patch", BUILD_SYSTEM.split(b"--- a/src")[0])
    apply_patches(root, [patch], tmp_path / "log", package="proj 1.0")
    with pytest.raises(BuildFailure, match=r"does not apply to pyproject\.toml"):
        apply_patches(root, [patch], tmp_path / "log", package="proj 1.0")


def test_a_git_rename_applies(tmp_path: Path) -> None:
    root = tree(tmp_path)
    data = (b"diff --git a/pyproject.toml b/renamed.toml\nsimilarity index 100%\n"
            b"rename from pyproject.toml\nrename to renamed.toml\n")
    apply_patches(root, [PatchFile.from_bytes("mv.patch", data)], tmp_path / "log",
                  package="proj 1.0", mtime=1_000_000_000)
    assert (root / "renamed.toml").read_text() == PYPROJECT
    assert not (root / "pyproject.toml").exists()
    assert os.stat(root / "renamed.toml").st_mtime == 1_000_000_000


def test_a_patch_for_a_missing_file_fails(tmp_path: Path) -> None:
    root = tree(tmp_path)
    data = b"--- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(BuildFailure, match=r"nope\.patch does not apply"):
        apply_patches(root, [PatchFile.from_bytes("nope.patch", data)], tmp_path / "log",
                      package="proj 1.0")


def test_unsafe_patches_are_refused_at_apply_time_too(tmp_path: Path) -> None:
    root = tree(tmp_path)
    data = b"--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n"
    forged = PatchFile("evil.patch", "0" * 64, ("x",), data)  # built without the check
    with pytest.raises(UserInputError, match=r"evil\.patch for proj 1\.0 is refused"):
        apply_patches(root, [forged], tmp_path / "log", package="proj 1.0")
    assert not (tmp_path / "x").exists()


def test_a_symlink_in_the_tree_does_not_lead_patch_outside(tmp_path: Path) -> None:
    root = tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("a\n")
    (root / "link").symlink_to(outside)
    data = b"--- a/link/f.txt\n+++ b/link/f.txt\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(UserInputError, match="outside the source tree"):
        apply_patches(root, [PatchFile.from_bytes("l.patch", data)], tmp_path / "log",
                      package="proj 1.0")
    assert (outside / "f.txt").read_text() == "a\n"


def make_wheel(path: Path, metadata: bytes) -> None:
    import zipfile

    members = [("pkg/__init__.py", b"x = 1\n"), ("pkg-1.0.dist-info/METADATA", metadata),
               ("pkg-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\n")]
    record = "".join(f"{name},sha256=old,{len(data)}\n" for name, data in members)
    record += "pkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [*members, ("pkg-1.0.dist-info/RECORD", record.encode())]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


@pytest.mark.parametrize("body", [b"\nA description.\n", b""])
def test_rewrite_requires_dist(tmp_path: Path, body: bytes) -> None:
    import base64
    import hashlib
    import zipfile

    from packaging.requirements import Requirement

    from wheelstrap.dist.patching import rewrite_requires_dist
    from wheelstrap.dist.wheels import read_metadata

    metadata = (b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"
                b"Requires-Dist: typing-extensions;\n python_version < '3.10'\n"
                b"Requires-Dist: packaging\nRequires-Python: >=3.8\n" + body)
    original = tmp_path / "in" / "pkg-1.0-py3-none-any.whl"
    original.parent.mkdir()
    make_wheel(original, metadata)
    out = tmp_path / "pkg-1.0-py3-none-any.whl"
    new_reqs = [Requirement("packaging>=20"), Requirement("tomli; python_version < '3.11'")]
    rewrite_requires_dist(original, out, new_reqs)
    info = read_metadata(out)
    assert [str(r) for r in info.requires_dist] == [str(r) for r in new_reqs]
    assert info.requires_python == ">=3.8"
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(out) as b:
        assert a.namelist() == b.namelist()
        assert a.read("pkg/__init__.py") == b.read("pkg/__init__.py")
        assert [i.date_time for i in a.infolist()] == [i.date_time for i in b.infolist()]
        new_meta = b.read("pkg-1.0.dist-info/METADATA")
        assert new_meta.endswith(body or b"Requires-Python: >=3.8\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(new_meta).digest()).rstrip(b"=")
        record = b.read("pkg-1.0.dist-info/RECORD").decode()
        assert f"pkg-1.0.dist-info/METADATA,sha256={digest.decode()},{len(new_meta)}" in record
        assert "pkg/__init__.py,sha256=old,6" in record
    again = tmp_path / "again.whl"
    rewrite_requires_dist(original, again, new_reqs)
    assert again.read_bytes() == out.read_bytes()
