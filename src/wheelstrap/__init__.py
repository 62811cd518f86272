"""wheelstrap: build a whole Python dependency tree from source, build cycles included."""

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
    "bootstrap",
    "find_cycles",
]
