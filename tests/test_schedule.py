"""The longest remaining path, over a waiter relation."""

from __future__ import annotations

from wheelstrap.plan.schedule import remaining_path


def _rank(waiters: dict[str, list[str]], cost: dict[str, float]) -> dict[str, float]:
    memo: dict[str, float] = {}
    return {n: remaining_path(n, lambda k: waiters.get(k, []), cost.__getitem__, memo)
            for n in cost}


def test_the_longest_chain_not_the_most_waiters():
    waiters = {"deep": ["mid"], "mid": ["app"], "wide": ["w1", "w2", "w3"]}
    cost = dict.fromkeys(["deep", "mid", "app", "wide", "w1", "w2", "w3"], 1.0)
    rank = _rank(waiters, cost)
    assert rank["deep"] == 3.0 and rank["wide"] == 2.0 and rank["app"] == 1.0
    cost["w2"] = 5.0
    assert _rank(waiters, cost)["wide"] == 6.0


def test_a_cycle_of_waiters_ends_the_path():
    waiters = {"a": ["b"], "b": ["a", "c"], "c": []}
    rank = _rank(waiters, {"a": 1.0, "b": 2.0, "c": 4.0})
    assert rank["a"] == 7.0  # a, b, c; the edge back to a counts for nothing


def test_a_chain_of_any_depth():
    n = 20_000
    waiters = {str(i): [str(i + 1)] for i in range(n - 1)}
    memo: dict[str, float] = {}
    assert remaining_path("0", lambda k: waiters.get(k, []), lambda k: 1.0, memo) == n
    assert len(memo) == n
