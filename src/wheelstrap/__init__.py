"""wheelstrap: build a whole Python dependency tree from source, build cycles included."""

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .bootstrap import Options, Result, bootstrap
    from .errors import (
        BuildFailure,
        CycleError,
        IndexAccessError,
        InternalError,
        ResolutionError,
        SourceError,
        UserInputError,
        WheelstrapError,
    )
    from .graph import Cycle, Edge, Graph, NodeId, find_cycles
    from .target import Target

_WHERE = {
    "Options": "bootstrap", "Result": "bootstrap", "bootstrap": "bootstrap",
    "BuildFailure": "errors", "CycleError": "errors", "IndexAccessError": "errors",
    "InternalError": "errors", "ResolutionError": "errors", "SourceError": "errors",
    "UserInputError": "errors", "WheelstrapError": "errors",
    "Cycle": "graph", "Edge": "graph", "Graph": "graph", "NodeId": "graph",
    "find_cycles": "graph", "Target": "target",
}


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so that importing a submodule stays cheap."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'wheelstrap' has no attribute {name!r}")


__all__ = [
    "BuildFailure",
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
