from __future__ import annotations

import pytest

from wheelstrap.errors import UserInputError
from wheelstrap.reqfiles import read_files


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
