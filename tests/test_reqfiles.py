from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wheelstrap.errors import UserInputError
from wheelstrap.index.reqfiles import read_files


def test_nested_files_continuations_and_comments(tmp_path):
    (tmp_path / "base.txt").write_text("# comment\nalpha>=1 \\\n  ,<3\n-c cons.txt\n")
    (tmp_path / "cons.txt").write_text("alpha==2.0  # pinned\n")
    (tmp_path / "req.txt").write_text("-r base.txt\nbeta[x]; python_version >= '3'\n")
    result = read_files([tmp_path / "req.txt"], [])
    assert [str(r) for r in result.requirements] == [
        "alpha<3,>=1", 'beta[x]; python_version >= "3"']
    assert [str(r) for r in result.constraints] == ["alpha==2.0"]


def test_every_problem_is_reported_at_once(tmp_path):
    (tmp_path / "req.txt").write_text("good\nbad!!\n--editable x\nalso bad ==\n")
    with pytest.raises(UserInputError) as info:
        read_files([tmp_path / "req.txt"], [tmp_path / "missing.txt"])
    message = info.value.message
    assert "req.txt:2" in message and "req.txt:3" in message and "req.txt:4" in message
    assert "missing.txt" in message


# -- --hash: pip's hash-checking mode ------------------------------------------------------

A, B, C = "a" * 64, "b" * 64, "c" * 128


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_hashes_are_read_per_project(tmp_path):
    req = _write(tmp_path, "req.txt", f"alpha==1.0 --hash=sha256:{A} \\\n"
                 f"    --hash sha256:{B.upper()}\nbeta===2 --hash=sha512:{C}  # pinned\n"
                 "-c cons.txt\n")
    _write(tmp_path, "cons.txt", f"gamma==3 --hash=sha256:{A}\nalpha==1.0\n")
    result = read_files([req], [])
    assert [str(r) for r in result.requirements] == ["alpha==1.0", "beta===2"]
    policy = result.hashes
    assert policy.required
    alpha = policy.for_name("Alpha")
    assert alpha is not None and alpha.digests == {"sha256": frozenset({A, B})}
    assert alpha.where == (f"{req}:1",)
    assert policy.for_name("gamma") is not None  # a constraint may carry the hash
    with pytest.raises(UserInputError) as info:
        policy.for_name("delta")  # a dependency nobody hashed cannot be fetched
    assert "delta is needed, but the requirement files give it no --hash" in info.value.message


def test_without_hashes_nothing_is_checked(tmp_path):
    result = read_files([_write(tmp_path, "req.txt", "alpha>=1\n")], [])
    assert not result.hashes.required and result.hashes.for_name("alpha") is None


@pytest.mark.parametrize(("text", "needle"), [
    (f"alpha==1 --hash=sha256:{A}\nbeta==2\n", "beta==2 has no --hash, but other requirements"),
    (f"alpha>=1 --hash=sha256:{A}\n", "must be pinned with == or === in hash-checking mode"),
    (f"alpha==1.* --hash=sha256:{A}\n", "must be pinned"),
    ("alpha==1 --hash=md5:abc\n", "--hash 'md5:abc' is not ALGORITHM:HEXDIGEST"),
    ("alpha==1 --hash=sha256:abc\n", "digest of the right length"),
    ("alpha==1 --hash\n", "--hash None is not"),
    (f"--hash=sha256:{A}\n", "it belongs after a requirement on the same line"),
    (f"alpha==1 --hash=sha256:{A}\nalpha==1 --hash=sha256:{B}\n", "have no digest in common"),
    ("alpha==1 --no-binary :all:\n", "option '--no-binary' is not supported after a requirement"),
])
def test_hash_problems_are_named_by_line(tmp_path, text, needle):
    req = _write(tmp_path, "req.txt", text)
    with pytest.raises(UserInputError) as info:
        read_files([req], [])
    assert str(req) in info.value.message and needle in info.value.message, info.value.message


def test_allowed_hashes_check_the_bytes(tmp_path):
    from wheelstrap.errors import SourceError

    req = _write(tmp_path, "req.txt", f"alpha==1 --hash=sha256:{A} --hash=sha512:{C}\n")
    allowed = read_files([req], []).hashes.for_name("alpha")
    assert allowed is not None
    assert allowed.admits_sha256(A) and allowed.admits_sha256(None)
    assert not allowed.admits_sha256(B)
    allowed.check("alpha-1.tar.gz", "u", {"sha256": B, "sha512": C})  # one match is enough
    with pytest.raises(SourceError) as info:
        allowed.check("alpha-1.tar.gz", "https://x.invalid/a", {"sha256": B, "sha512": "d"})
    assert f"{req}:1" in info.value.message and "not among the hashes" in info.value.message


# -- bad files: a clear error naming file and line ------------------------------------------

@pytest.mark.parametrize(("data", "needle"), [
    (b"alpha\n# caf\xe9\n", ":2: the file is not UTF-8 text (byte 0xe9"),
    (b"alpha\nbe\x00ta\n", ":2: the line contains a NUL character"),
    (b"-r 'unclosed\n", ":1: the options \"-r 'unclosed\" cannot be split (No closing"),
    (b"alpha==1 --hash 'sha256:x\n", ":1: the options"),
    (b"alpha; python_version > '3\n", ":1: \"alpha; python_version > '3\" is not a valid"),
    (b"-r\n", ":1: option -r needs a file name"),
    (b"-r missing.txt\n", "cannot read"),
    (b"-r \x00x\n", ":1: the line contains a NUL character"),
    (b"\xff\xfe\x00\xd8", "the file is not UTF-16 text"),
])
def test_bad_requirement_files_name_file_and_line(tmp_path, data, needle):
    req = _write(tmp_path, "req.txt", data)
    with pytest.raises(UserInputError) as info:
        read_files([req], [])
    assert needle in info.value.message, info.value.message
    assert str(req) in info.value.message or "missing.txt" in info.value.message


def test_byte_order_marks_are_honoured(tmp_path):
    for i, data in enumerate([b"\xef\xbb\xbfalpha\n", "\ufeffalpha\n".encode("utf-16-le"),
                              "\ufeffalpha\n".encode("utf-16-be"),
                              "\ufeffalpha\n".encode("utf-32-le")]):
        result = read_files([_write(tmp_path, f"r{i}.txt", data)], [])
        assert [str(r) for r in result.requirements] == ["alpha"]


def test_nesting_is_bounded(tmp_path):
    for i in range(40):
        _write(tmp_path, f"r{i}.txt", f"-r r{i + 1}.txt\n")
    _write(tmp_path, "r40.txt", "alpha\n")
    with pytest.raises(UserInputError) as info:
        read_files([tmp_path / "r0.txt"], [])
    assert "nest more than" in info.value.message


def test_self_inclusion_is_read_once(tmp_path):
    req = _write(tmp_path, "req.txt", "-r req.txt\nalpha\n")
    assert [str(r) for r in read_files([req], []).requirements] == ["alpha"]


def test_tab_before_comment(tmp_path):
    req = _write(tmp_path, "req.txt", "alpha>=1\t# why\n")
    assert [str(r) for r in read_files([req], []).requirements] == ["alpha>=1"]


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.sampled_from(["alpha", "==1", " --hash=sha256:" + A, " --hash", "-r ", "-c ",
                     "req.txt", "'", '"', "\\\n", "\n", "#", "\x00", "\xff", ";", "[x]",
                     "python_version > '3'", "@ https://x.invalid/a.tar.gz", "-e ."]),
    st.text(max_size=5)), max_size=25).map("".join), st.sampled_from(["utf-8", "latin-1"]))
def test_property_read_files(tmp_path, text, encoding):
    req = tmp_path / "req.txt"
    req.write_bytes(text.encode(encoding, "replace"))
    try:
        result = read_files([req], [])
    except UserInputError:
        return
    assert all(r.url is None for r in result.requirements)


def test_the_files_read_are_listed_once(tmp_path):
    req = _write(tmp_path, "req.txt", "-r base.txt\n-c base.txt\nalpha\n")
    _write(tmp_path, "base.txt", "-r req.txt\nbeta\n")
    result = read_files([req], [tmp_path / "base.txt"])
    assert result.files == (req.resolve(), (tmp_path / "base.txt").resolve())


def test_only_regular_files_of_bounded_size_are_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.txt")
    req = _write(tmp_path, "req.txt", "-r /dev/zero\n-r fifo.txt\n")
    with pytest.raises(UserInputError) as info:
        read_files([req], [])
    assert "/dev/zero is not a regular file" in info.value.message
    assert "fifo.txt is not a regular file" in info.value.message
