"""Task durations kept from one run to the next, and the guess for tasks never timed."""

from __future__ import annotations

import json

import pytest

from wheelstrap.model.durations import Durations, estimate
from wheelstrap.store.output import Layout
from wheelstrap.store.store import Store


def test_recorded_then_other_version_then_a_guess_by_size():
    d = Durations()
    d.record("pkg", "1.0", "build", 4.0)
    assert d.expected("pkg", "1.0", "build", 10) == 4.0
    assert d.expected("pkg", "2.0", "build", 10) == 4.0  # another version of it
    assert d.expected("other", "1.0", "build", None) == estimate("build", None)
    assert estimate("build", 5_000_000) > estimate("build", 10_000) > 0
    assert estimate("prepare", 0) > 0


def test_a_store_writes_only_a_change_and_reads_it_back(tmp_path):
    store = Store(Layout(tmp_path))
    d = store.load_durations()
    assert len(d) == 0
    store.save_durations(d)
    assert not store.durations_path.exists()  # nothing to keep
    d.record("pkg", "1.0", "prepare", 0.5)
    d.record("pkg", "1.0", "build", 2.25)
    d.record("pkg", "1.0", "test", 9.0)  # not a phase: ignored
    store.save_durations(d)
    doc = json.loads(store.durations_path.read_text())
    assert doc == {"schema": "wheelstrap-durations", "version": 1,
                   "tasks": {"pkg 1.0 build": 2.25, "pkg 1.0 prepare": 0.5}}
    again = store.load_durations()
    assert again.get("pkg", "1.0", "build") == 2.25 and not again.changed


@pytest.mark.parametrize("doc", [
    None, [], {"schema": "wheelstrap-durations", "version": 2, "tasks": {}},
    {"schema": "other", "version": 1, "tasks": {}},
    {"schema": "wheelstrap-durations", "version": 1, "tasks": []},
    {"schema": "wheelstrap-durations", "version": 1, "tasks": {"pkg 1.0 build": -1}},
    {"schema": "wheelstrap-durations", "version": 1, "tasks": {"pkg 1.0 build": "1"}},
    {"schema": "wheelstrap-durations", "version": 1, "tasks": {"pkg 1.0 build": True}},
    {"schema": "wheelstrap-durations", "version": 1, "tasks": {"pkg build": 1.0}},
    {"schema": "wheelstrap-durations", "version": 1,
     "tasks": {"pkg 1.0 build": 1.0, "pkg 1.0 lint": 1.0}},
])
def test_a_damaged_document_gives_no_durations(doc):
    assert len(Durations.parse(doc)) == 0


def test_an_unreadable_file_gives_no_durations(tmp_path):
    path = tmp_path / "durations.json"
    path.write_bytes(b"\xff\xfe{")
    assert len(Durations.load(path)) == 0
    path.write_text("{truncated")
    assert len(Durations.load(path)) == 0
    assert len(Durations.load(tmp_path / "missing.json")) == 0
