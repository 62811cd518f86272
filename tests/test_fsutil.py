"""Atomic writes of many files at once; hashing while copying; log tails."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from wheelstrap.fsutil import (
    TAIL_BYTES,
    TMP_PREFIX,
    LimitExceeded,
    atomic_write_texts,
    chunks_of,
    copy_verified,
    tail,
)


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


def test_copy_verified_hashes_what_it_writes():
    data = os.urandom(3 * 2**20 + 17)
    out, h, h2 = io.BytesIO(), hashlib.sha256(), hashlib.sha512()
    assert copy_verified(chunks_of(io.BytesIO(data)), out, (h, h2)) == len(data)
    assert out.getvalue() == data
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    assert h2.hexdigest() == hashlib.sha512(data).hexdigest()


def test_copy_verified_stops_at_its_limit_before_the_chunk_that_crosses_it():
    out = io.BytesIO()
    with pytest.raises(LimitExceeded) as info:
        copy_verified([b"abc", b"def", b"ghi"], out, limit=7)
    assert info.value.limit == 7 and out.getvalue() == b"abcdef"
    assert copy_verified([b"abc", b"def"], None, limit=6) == 6


def test_chunks_of_a_descriptor_stop_where_asked(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert list(chunks_of(fd, 4, stop_at=7)) == [b"0123", b"456"]
        assert list(chunks_of(fd, 4)) == [b"789"]
    finally:
        os.close(fd)


def test_a_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, lines=3) == "line 97\nline 98\nline 99"
    assert tail(log.read_bytes(), lines=2) == "line 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""


def test_a_tail_of_one_huge_line_is_bounded_and_says_what_was_cut(tmp_path):
    log = tmp_path / "build.log"
    log.write_bytes(b"x" * (10 * 2**20) + b"\nfailed: the end\n")
    for source in (log, log.read_bytes(), log.read_text()):
        text = tail(source)
        assert len(text.encode()) <= TAIL_BYTES
        lines = text.splitlines()
        assert lines[-1] == "failed: the end"
        assert lines[0].startswith("[…] xxx") and "characters cut from a line" in lines[0]
    # many long lines: the bytes bound the tail, not only the count of lines
    log.write_bytes(b"".join(b"%d " % i + b"y" * 50_000 + b"\n" for i in range(40)))
    assert len(tail(log, line_chars=10**9).encode()) <= TAIL_BYTES
