"""One stream of progress events: the display and events.jsonl see the same events."""

from __future__ import annotations

import json
from pathlib import Path

from wheelstrap.model.progress import (
    Built,
    Discovered,
    Downloaded,
    PageArrived,
    Progress,
    Reporter,
    Reused,
    StageChanged,
    Task,
    TaskFinished,
    TaskStarted,
    ToReporter,
    Warn,
)
from wheelstrap.store.events import EventLog


class Recorder(Reporter):
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def discovered(self, node: str) -> None:
        self.calls.append(("discovered", node))

    def starting(self, node: str, action: str) -> None:
        self.calls.append(("starting", node, action))

    def finished(self, node: str, action: str, detail: str = "") -> None:
        self.calls.append(("finished", node, action, detail))

    def stage(self, cycle: str, stage: int, status: str) -> None:
        self.calls.append(("stage", cycle, str(stage), status))

    def warning(self, message: str) -> None:
        self.calls.append(("warning", message))


def test_the_display_and_the_log_are_fed_by_the_same_events(tmp_path: Path) -> None:
    shown = Recorder()
    log = EventLog(tmp_path / "events.jsonl")
    progress = Progress()
    progress.subscribe(ToReporter(shown))
    progress.subscribe(log)
    prep = Task("a 1.0", "prepare", None, None, "a 1.0")
    build = Task("a 1.0", "build", None, None, "a 1.0")
    stage = Task("b 1.0", "build", 2, "cycle-1", "b 1.0 (stage 2)")
    for event in (Discovered("a 1.0"), PageArrived("a", 0.01, True),
                  Downloaded("a 1.0", 0.02, 100), Downloaded("z 1.0", 0.02, 5, ahead=True),
                  TaskStarted(prep, then=True),
                  TaskFinished(prep, "w1", 0.4, {"total": 0.4}),
                  TaskStarted(build, worker="w1", follows="prepare", at=0.0),
                  TaskFinished(build, "w1", 0.1, {"total": 0.1}), Built(build),
                  Reused(stage), StageChanged("cycle-1", 2, "built"), Warn("careful")):
        progress.emit(event)
    log.close()
    assert shown.calls == [
        ("discovered", "a 1.0"), ("finished", "a 1.0", "fetch", ""),
        ("starting", "a 1.0", "prepare"), ("starting", "a 1.0", "build"),
        ("finished", "a 1.0", "prepare", ""), ("finished", "a 1.0", "build", ""),
        ("finished", "b 1.0 (stage 2)", "build", "reused"),
        ("stage", "cycle-1", "2", "built"), ("warning", "careful")]
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == [
        "discovered", "page", "downloaded", "downloaded", "started", "finished", "started",
        "finished", "reused", "stage"]
    assert lines[1] == {"t": lines[1]["t"], "event": "page", "name": "a", "duration": 0.01,
                        "ahead": True}
    assert "ahead" not in lines[2] and lines[3]["ahead"] is True
    assert lines[4] == {"t": lines[4]["t"], "event": "started", "node": "a 1.0",
                        "phase": "prepare", "stage": None, "cycle": None}
    assert lines[6]["follows"] == "prepare" and lines[6]["worker"] == "w1"
    assert lines[6]["t"] == 0.0  # when it happened, not when it was told
    assert lines[8] == {"t": lines[8]["t"], "event": "reused", "node": "b 1.0",
                        "phase": "build", "stage": 2, "cycle": "cycle-1"}
