"""Vendors: what a build needs from outside its sdist, fetched before its hooks run.

A build's hooks run offline in the sandbox.  What a language's own package manager would
download during the build (cargo's crates today; Go modules could come the same way) is
named by the build's description (:attr:`wheelstrap.model.build.BuildSpec.vendored`,
read from the sdist's lock when the sdist was fetched), fetched here, outside the
sandbox, each file checked against the lock, and laid out for the build to use offline.

A vendor is a :class:`Vendor`: given what the spec names for its ``kind``, the source
tree and the build's folder, it returns a :class:`Provision`: the variables the hooks get,
the host folders they may read, and what to add to ``PATH``.  :func:`provide` runs the
vendors of a build; a new one is one more entry of :data:`VENDORS`.  (Plugins' own
``prepare_source`` hook runs before, on the tree; a vendor may read what it changed.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wheelstrap.build.vendor.base import Provision, Vendor
from wheelstrap.errors import InternalError
from wheelstrap.model.build import Vendored
from wheelstrap.model.limits import ArchiveLimits

__all__ = ["Provision", "Vendor", "provide"]


def _vendors() -> dict[str, Vendor]:
    from wheelstrap.build.vendor.cargo import CargoVendor

    return {v.kind: v for v in (CargoVendor(),)}


def provide(wanted: Sequence[Vendored], root: Path, work: Path, log: Path,
            limits: ArchiveLimits) -> list[Provision]:
    """Run the vendor of each entry of ``wanted``, in order."""
    vendors = _vendors() if wanted else {}
    out = []
    for entry in wanted:
        vendor = vendors.get(entry.kind)
        if vendor is None:
            raise InternalError(f"No vendor of kind {entry.kind!r}.")
        out.append(vendor.provide(entry, root, work, log, limits))
    return out
