"""Turns at CPU-bound work: one at a time, the most urgent first."""

from __future__ import annotations

import threading
import time

from wheelstrap.run.turns import Turns


def test_one_at_a_time_and_the_most_urgent_waiting_goes_first():
    turns = Turns()
    order: list[str] = []
    inside = 0
    most = 0
    lock = threading.Lock()

    def work(name: str, priority: float) -> None:
        nonlocal inside, most
        with turns.turn(priority):
            with lock:
                inside += 1
                most = max(most, inside)
            order.append(name)
            time.sleep(0.05)
            with lock:
                inside -= 1

    first = threading.Thread(target=work, args=("first", 5))
    first.start()
    time.sleep(0.02)  # "first" holds its turn; the others queue behind it
    threads = [threading.Thread(target=work, args=(name, prio))
               for name, prio in (("late-a", 1), ("backend", 0), ("late-b", 1))]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in [first, *threads]:
        t.join(10)
    assert most == 1
    assert order == ["first", "backend", "late-a", "late-b"]


def test_a_turn_is_given_back_when_the_work_fails():
    turns = Turns()
    try:
        with turns.turn(0):
            raise ValueError("boom")
    except ValueError:
        pass
    done = threading.Event()

    def next_one() -> None:
        with turns.turn(1):
            done.set()

    threading.Thread(target=next_one).start()
    assert done.wait(5)
