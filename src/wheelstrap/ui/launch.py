"""Running a bootstrap and saying how it went, for ``bootstrap`` and ``affected
--rebuild`` alike: the warning of builds without network isolation, the Dask cluster when
one is named, the run (:func:`wheelstrap.run.coordinator.bootstrap`), and its summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelstrap.ui.common import say
from wheelstrap.ui.display import LiveReporter, PlainReporter

if TYPE_CHECKING:
    from wheelstrap.model.build import BuildPolicy
    from wheelstrap.plan.options import Options
    from wheelstrap.run.cluster import SchedulerSpec
    from wheelstrap.run.coordinator import Result
    from wheelstrap.run.headstart import HeadStart
    from wheelstrap.run.workers import Workers


def describe_cycle(cycle: dict[str, Any]) -> str:
    """A few lines about one cycles.json entry."""
    broken = cycle.get("broken_by") or {}
    if broken.get("method") == "seeds":
        how = "seeds " + ", ".join(s["wheel"] for s in broken.get("seeds", []))
    elif broken.get("method") == "source":
        how = "stage-0 wheels packed from the sources of " + ", ".join(
            f"{s['name']} {s['version']}" for s in broken.get("stage0", []))
    else:
        how = "nothing (unbroken)"
    fixed = "fixed point" if cycle.get("fixed_point") else "NO fixed point"
    lines = [f"{cycle['id']}: {cycle['explanation']}",
             f"  broken by {how}; {cycle.get('stages', 0)} stages, {fixed}; "
             f"status: {cycle.get('status')}"]
    for check in cycle.get("seed_checks", []):
        verdict = "reproduced" if check["reproduced"] else "DIFFERS"
        lines.append(f"  seed {check['seed_wheel']}: {verdict}")
    cross = cycle.get("cross_check")
    if cross is not None:
        verdict = "identical" if cross["identical"] else "DIFFERENT"
        lines.append(f"  cross-check against a seedless build: {verdict}")
    return "\n".join(lines)


def launch(options: Options, reporter: PlainReporter, head: HeadStart,
           cluster_spec: SchedulerSpec | None = None, advertise: str | None = None,
           before_run: Callable[[], None] | None = None) -> None:
    """Run a bootstrap with ``options``, shown by ``reporter``, and say how it went;
    ``before_run`` is called as the run begins (the imports are done)."""
    _warn_without_isolation(options.policy, reporter)
    if cluster_spec is None:
        result = _run_bootstrap(options, reporter, None, head, before_run)
    else:
        result = _run_on_cluster(options, reporter, head, cluster_spec, advertise, before_run)
    _conclude(result, reporter, options.output)


def _warn_without_isolation(policy: BuildPolicy, reporter: PlainReporter) -> None:
    from wheelstrap.build.backend import network_isolation_available

    if (policy.sandbox == "none" and policy.isolate_network
            and not network_isolation_available()):
        reporter.warning("'unshare -rn' is not available here: build backends run with "
                         "network access.")


def _run_on_cluster(options: Options, reporter: PlainReporter, head: HeadStart,
                    spec: SchedulerSpec, advertise: str | None,
                    before_run: Callable[[], None] | None) -> Result:
    from wheelstrap.run.cluster import Cluster, default_advertise_host
    from wheelstrap.run.workers import ClusterWorkers

    host = advertise or default_advertise_host(spec)
    with Cluster(spec, options.target.markers, advertise_host=host) as cluster:
        for worker, why in cluster.skipped:
            reporter.warning(f"Dask worker {worker} is not used: {why}")
        with cluster.input_server() as server:
            workers = ClusterWorkers(cluster, server)
            if isinstance(reporter, LiveReporter):  # its estimate of the time left
                reporter.workers = workers.capacity()
            reporter.info(f"building on {workers.describe()}")
            return _run_bootstrap(options, reporter, workers, head, before_run)


def _conclude(result: Result, reporter: PlainReporter, output: Path) -> None:
    for cycle in result.cycles:
        say(describe_cycle(cycle))
    if result.prebuilt:
        reporter.warning(f"{len(result.prebuilt)} wheel(s) taken prebuilt from the index, not "
                         "built from source: " + ", ".join(result.prebuilt))
    for table in result.unused_settings:
        reporter.warning(f"the settings table {table} matched no package of this run")
    say(f"done: {result.built} built, {result.reused} reused; wheels in {output / 'wheels'}")


def _run_bootstrap(options: Options, reporter: PlainReporter, workers: Workers | None,
                   head: HeadStart, before_run: Callable[[], None] | None) -> Result:
    from wheelstrap.run.coordinator import bootstrap as run

    if options.index_url.startswith(("https://", "http://")):
        from wheelstrap.index.client import import_httpx

        import_httpx()  # the run's first step needs it: imported with the rest
    if before_run is not None:
        before_run()
    with reporter:  # the live view, on a terminal, is drawn while the run goes
        return run(options, reporter, workers, head)
