"""Atomic writes of many files at once."""

from __future__ import annotations

import pytest

from wheelstrap.fsutil import TMP_PREFIX, atomic_write_texts


def test_many_small_files_are_written_atomically_together(tmp_path):
    good = [(tmp_path / "pages" / f"p{i}" / "index.html", f"page {i}\n") for i in range(20)]
    (tmp_path / "pages" / "p3").mkdir(parents=True)
    (tmp_path / "pages" / "p3" / "index.html").write_text("the old page\n")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder\n")
    with pytest.raises(OSError):
        atomic_write_texts([*good[:10], (blocked / "index.html", "x"), *good[10:]])
    # every other file was written whole, the one that failed left nothing behind
    assert all(dest.read_text() == text for dest, text in good)
    assert blocked.read_text() == "not a folder\n"
    assert not [p for p in tmp_path.rglob(f"{TMP_PREFIX}*")]
