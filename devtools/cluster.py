"""`make cluster`: the scaled-out topology on one host, every part real, on loopback.

    HAProxy (public port) -> N instances (nginx front -> gunicorn, API only)
                          -> PostgreSQL (the job store) and a shared output folder
    Dask scheduler -> M workers (nannies): the async jobs

Each gunicorn master, nginx, Dask process and HAProxy runs in its own session, so one
instance (or worker) can die alone, and stopping a session stops all its children.
Every part reads one configuration (pywps-cluster.cfg in the run folder): the public URL is
HAProxy's, [processing] mode = dask, [server] expose_pid = true; each instance is named
instance-N in /health.

Command line: python -m devtools.cluster [--port 5000] [--instances 2] [--workers 2]
(WPS_WMS_URL: use that WMS instead of starting the embedded MapServer). It prints the
URLs once the service answers through HAProxy, and Ctrl-C or SIGTERM stops all of it.
"""

from __future__ import annotations

import argparse
import configparser
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devtools import dask_procs, embedded_wms
from devtools.embedded_wms import free_port
from devtools.postgres import Postgres, start_postgres
from wps_app.ops import balancer, front, serve
from wps_app.ops.processes import stop_group, wait_until_answering
from wps_app.settings import REPO_ROOT

Overrides = dict[str, dict[str, object]]


@dataclass
class Instance:
    """One API instance: nginx front -> gunicorn, each in its own session."""

    number: int
    front_port: int
    app_port: int
    gunicorn: subprocess.Popen
    nginx: subprocess.Popen

    @property
    def name(self) -> str:
        return f"instance-{self.number}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wps"

    def kill(self) -> None:
        """Kill this instance at once (SIGKILL to both sessions), as a crashed host."""
        stop_group(self.gunicorn, 0, first=signal.SIGKILL)
        stop_group(self.nginx, 0, first=signal.SIGKILL)

    def stop(self) -> None:
        front.stop(self.nginx)
        serve.stop_gunicorn(self.gunicorn)


@dataclass
class Cluster:
    """Everything `start_cluster` started; `stop()` stops all of it."""

    rundir: Path
    port: int
    config: Path
    postgres: Postgres
    scheduler_address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    haproxy: subprocess.Popen | None = None
    wms: embedded_wms.EmbeddedWms | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wps"

    @property
    def database(self) -> str:
        return self.postgres.url

    @property
    def output_path(self) -> Path:
        return self.rundir / "shared" / "outputs"

    def processes(self) -> list[subprocess.Popen]:
        """Every process started here (each the leader of its own session and group)."""
        found = [self.scheduler, *self.workers]
        for instance in self.instances:
            found += [instance.gunicorn, instance.nginx]
        return found + ([self.haproxy] if self.haproxy else [])

    def stop(self) -> None:
        """Stop everything, the entry first and the job store last."""
        if self.haproxy is not None:
            balancer.stop(self.haproxy)
        for instance in self.instances:
            instance.stop()
        for worker in self.workers:
            stop_group(worker, 15)
        stop_group(self.scheduler, 10)
        self.postgres.stop()
        if self.wms is not None:
            self.wms.stop()


def write_config(path: Path, port: int, shared: Path, database: str, scheduler: str,
                 wms_url: str, worker_threads: int, overrides: Overrides | None = None
                 ) -> Path:
    """The one configuration file of every instance and worker. As many jobs are admitted
    to run as the workers have threads: an admitted job's lease runs from admission, so
    one left waiting in Dask's queue longer than lease_s would be failed; the others wait
    in the store's queue, which has no lease."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict({
        "server": {"url": f"http://127.0.0.1:{port}/wps",
                   "outputurl": f"http://127.0.0.1:{port}/outputs/",
                   "outputpath": str(shared / "outputs"), "workdir": str(shared / "work"),
                   "trusted_proxies": "127.0.0.1", "expose_pid": "true",
                   "parallelprocesses": str(worker_threads)},
        "logging": {"database": database},
        "processing": {"mode": "dask", "dask_scheduler": scheduler},
        "wms": {"url": wms_url},
    })
    config.read_dict({s: {k: str(v) for k, v in kv.items()}
                      for s, kv in (overrides or {}).items()})
    with path.open("w") as handle:
        config.write(handle)
    return path


def start_instance(number: int, rundir: Path, config: Path, gunicorn_workers: int
                   ) -> Instance:
    """gunicorn (own session) behind its nginx front (own session), both on free ports."""
    folder = rundir / f"instance-{number}"
    folder.mkdir(parents=True, exist_ok=True)
    app_port, front_port = free_port(), free_port()
    env = dict(os.environ, PYWPS_CFG=str(config), WPS_SERVER_INSTANCE=f"instance-{number}",
               HOME=str(folder))
    env.pop("WPS_WMS_URL", None)  # the configuration file has it
    gunicorn = serve.start_gunicorn(f"127.0.0.1:{app_port}", gunicorn_workers,
                                    log=folder / "gunicorn.log", env=env)
    nginx = front.start(front.FrontOptions(listen=f"127.0.0.1:{front_port}",
                                           upstream=f"127.0.0.1:{app_port}",
                                           rundir=(folder / "front").resolve()))
    return Instance(number, front_port, app_port, gunicorn, nginx)


def start_cluster(rundir: Path, *, port: int | None = None, instances: int = 2,
                  workers: int = 2, wms_url: str | None = None,
                  overrides: Overrides | None = None, gunicorn_workers: int = 2,
                  timeout_s: float = 120.0, postgres_options: str = "") -> Cluster:
    """Start the whole topology and return once GetCapabilities answers through HAProxy
    and every Dask worker is connected; on any failure, stop what started and raise.
    `postgres_options`: more PostgreSQL server options (devtools.postgres.start_postgres)."""
    rundir = rundir.resolve()
    shared = rundir / "shared"
    for folder in (shared / "outputs", shared / "work"):
        folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    wms = None
    if wms_url is None:
        wms = embedded_wms.start(free_port(), rundir / "wms")
        wms_url = wms.url
    postgres = start_postgres(postgres_options)
    scheduler_address = f"tcp://127.0.0.1:{free_port()}"
    config = write_config(rundir / "pywps-cluster.cfg", port, shared, postgres.url,
                          scheduler_address, wms_url, workers * dask_procs.WORKER_THREADS,
                          overrides)
    env = {"PYWPS_CFG": str(config)}
    cluster = Cluster(rundir, port, config, postgres, scheduler_address,
                      dask_procs.start_scheduler(int(scheduler_address.rsplit(":", 1)[1]),
                                                 rundir / "dask", env), wms=wms)
    try:
        # one instance migrates the schema first: the others find it current
        cluster.instances.append(start_instance(1, rundir, config, gunicorn_workers))
        wait_until_answering(f"{cluster.instances[0].base}/health",
                             [cluster.instances[0].gunicorn, cluster.instances[0].nginx],
                             timeout_s)
        for number in range(2, instances + 1):
            cluster.instances.append(start_instance(number, rundir, config,
                                                    gunicorn_workers))
        cluster.workers = [dask_procs.start_worker(scheduler_address, f"worker-{n}",
                                                   rundir / "dask", env=env)
                           for n in range(1, workers + 1)]
        cluster.haproxy = balancer.start(balancer.BalancerOptions(
            listen=f"127.0.0.1:{port}", rundir=rundir / "haproxy",
            servers=tuple((i.name, f"127.0.0.1:{i.front_port}")
                          for i in cluster.instances)))
        for instance in cluster.instances:
            wait_until_answering(f"{instance.base}/health",
                                 [instance.gunicorn, instance.nginx], timeout_s)
        wait_until_answering(f"{cluster.url}?service=WPS&request=GetCapabilities",
                             [cluster.haproxy], timeout_s)
        dask_procs.wait_for_workers(scheduler_address, workers, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000, help="HAProxy's (the public) port")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Dask workers")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--rundir", type=Path, default=REPO_ROOT / "var" / "cluster")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    cluster = start_cluster(args.rundir, port=args.port, instances=args.instances,
                            workers=args.workers, wms_url=os.environ.get("WPS_WMS_URL"),
                            gunicorn_workers=args.gunicorn_workers)
    try:
        if cluster.wms is not None:
            print(f"sample WMS: {cluster.wms.url}", flush=True)
        print(f"WPS: {cluster.url}", flush=True)
        for instance in cluster.instances:
            print(f"instance {instance.number}: {instance.url}", flush=True)
        print(f"dask scheduler: {cluster.scheduler_address}", flush=True)
        print(f"job store: {cluster.database}", flush=True)
        while not stopping.wait(1.0):
            if cluster.haproxy.poll() is not None or cluster.scheduler.poll() is not None:
                print("HAProxy or the Dask scheduler exited; stopping", file=sys.stderr,
                      flush=True)
                return 1
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
