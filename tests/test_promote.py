"""Seed promotion reads the run's documents through the one tolerant reader
(model/schema.py) and reports every problem of an output at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from wheelstrap.errors import UserInputError
from wheelstrap.run.promote import export


def _output(tmp_path: Path, cycles: object, builds: object) -> Path:
    out = tmp_path / "out"
    (out / "wheels").mkdir(parents=True)
    (out / "provenance").mkdir()
    (out / "cycles.json").write_text(json.dumps(cycles))
    (out / "build-order.json").write_text(json.dumps(builds))
    return out


CYCLE = {"id": "cycle-1", "members": [{"name": "a", "version": "1"},
                                      {"name": "b", "version": "1"}],
         "status": "shipped", "broken_by": {"method": "seeds"}, "fixed_point": True}


def _build(name: str) -> dict[str, object]:
    return {"name": name, "version": "1", "wheel": f"{name}-1-py3-none-any.whl",
            "sha256": "0" * 64, "reused": False, "build_env": [], "cycle": "cycle-1",
            "stage": 2}


ORDER = {"schema": "wheelstrap-build-order", "version": 1, "builds": [_build("a")]}


@pytest.mark.parametrize("cycles, needle", [
    ([], "cycles.json is not a valid wheelstrap-cycles v1 document: document: expected "
         "an object, found a list"),
    ({"schema": "wheelstrap-cycles", "version": 1, "cycles": [{"id": 3}]},
     "cycles[0].id: expected a string, found a number 3"),
])
def test_a_broken_cycles_json_is_a_user_error(tmp_path, cycles, needle):
    out = _output(tmp_path, cycles, ORDER)
    with pytest.raises(UserInputError) as info:
        export(out, tmp_path / "store")
    assert needle in info.value.message and info.value.hint


def test_a_missing_document_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match=r"cycles\.json does not exist"):
        export(tmp_path, tmp_path / "store")


def test_every_problem_of_an_output_is_reported_at_once(tmp_path):
    out = _output(tmp_path, {"schema": "wheelstrap-cycles", "version": 1, "cycles": [CYCLE]},
                  ORDER)
    with pytest.raises(UserInputError) as info:
        export(out, tmp_path / "store")
    message = info.value.message
    assert message.startswith("The output cannot be promoted:\n  ")
    assert "a-1-py3-none-any.whl is missing or does not match build-order.json" in message
    assert "b 1 of cycle-1 is not in build-order.json" in message
    assert not (tmp_path / "store").exists()


def test_a_statement_that_is_not_one_is_named(tmp_path):
    out = _output(tmp_path, {"schema": "wheelstrap-cycles", "version": 1,
                             "cycles": [{**CYCLE, "members": CYCLE["members"][:1]}]}, ORDER)
    wheel = out / "wheels" / "a-1-py3-none-any.whl"
    wheel.write_bytes(b"")
    order = {**ORDER, "builds": [{**_build("a"), "sha256": hashlib.sha256(b"").hexdigest()}]}
    (out / "build-order.json").write_text(json.dumps(order))
    (out / "provenance" / "a-1-py3-none-any.whl.intoto.json").write_text('{"predicate": []}')
    with pytest.raises(UserInputError) as info:
        export(out, tmp_path / "store")
    assert "cannot be read as a provenance statement of wheelstrap" in info.value.message
    assert "Traceback" not in info.value.message
