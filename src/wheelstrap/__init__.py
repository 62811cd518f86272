"""wheelstrap: build a whole Python dependency tree from source, build cycles included."""

from typing import TYPE_CHECKING, Any

from wheelstrap._version import __version__

if TYPE_CHECKING:
    from wheelstrap.config.hooks import BuildHooks
    from wheelstrap.errors import (
        BuildFailure,
        CycleError,
        IndexAccessError,
        InternalError,
        ResolutionError,
        SourceError,
        UserInputError,
        WheelstrapError,
    )
    from wheelstrap.model.graph import Cycle, Edge, Graph, NodeId, find_cycles
    from wheelstrap.model.target import Target
    from wheelstrap.plan.options import Options
    from wheelstrap.run.coordinator import Result, bootstrap

_WHERE = {
    "BuildHooks": "config.hooks",
    "Options": "plan.options", "Result": "run.coordinator", "bootstrap": "run.coordinator",
    "BuildFailure": "errors", "CycleError": "errors", "IndexAccessError": "errors",
    "InternalError": "errors", "ResolutionError": "errors", "SourceError": "errors",
    "UserInputError": "errors", "WheelstrapError": "errors",
    "Cycle": "model.graph", "Edge": "model.graph", "Graph": "model.graph",
    "NodeId": "model.graph", "find_cycles": "model.graph", "Target": "model.target",
}


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so that importing a submodule stays cheap."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'wheelstrap' has no attribute {name!r}")


__all__ = [
    "BuildFailure",
    "BuildHooks",
    "Cycle",
    "CycleError",
    "Edge",
    "Graph",
    "IndexAccessError",
    "InternalError",
    "NodeId",
    "Options",
    "ResolutionError",
    "Result",
    "SourceError",
    "Target",
    "UserInputError",
    "WheelstrapError",
    "__version__",
    "bootstrap",
    "find_cycles",
]
