"""Ranking work by the longest path that remains after it (the critical-path rule).

Pure: the planner gives what waits on what and what each piece of work is expected to
cost; nothing here knows about packages.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def remaining_path(start: K, waiters: Callable[[K], Iterable[K]], cost: Callable[[K], float],
                   memo: dict[K, float]) -> float:
    """The expected length of the longest chain of work from ``start`` on: its own cost
    plus the longest remaining path of whatever waits on it.

    ``memo`` is shared by the calls of one planning round, so ranking every ready task
    visits each node and edge once.  The waiter relation may have cycles (members of a
    build cycle wait on each other): an edge back into the path being explored counts for
    nothing.  Iterative, so a chain of any depth is fine."""
    if start in memo:
        return memo[start]
    on_path: set[K] = {start}
    stack: list[tuple[K, list[K], float]] = [(start, list(waiters(start)), 0.0)]
    while stack:
        node, todo, best = stack[-1]
        descended = False
        while todo:
            nxt = todo.pop()
            if nxt in memo:
                best = max(best, memo[nxt])
            elif nxt not in on_path:
                stack[-1] = (node, todo, best)
                on_path.add(nxt)
                stack.append((nxt, list(waiters(nxt)), 0.0))
                descended = True
                break
        if descended:
            continue
        stack.pop()
        on_path.discard(node)
        memo[node] = cost(node) + best
        if stack:
            parent, ptodo, pbest = stack[-1]
            stack[-1] = (parent, ptodo, max(pbest, memo[node]))
    return memo[start]
