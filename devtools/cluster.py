"""`make cluster`: the scaled-out topology on one host, every part real, on loopback.

    HAProxy (public port) -> N instances (nginx front -> gunicorn, API only)
                          -> PostgreSQL (the job store) and a shared output folder
    Dask scheduler -> M workers (nannies): the async jobs

Each gunicorn master, nginx, Dask process and HAProxy runs in its own session, so one
instance (or worker) can die alone, and stopping a session stops all its children.
Every part reads one configuration (pywps-cluster.cfg in the run folder): the public URL is
HAProxy's, [processing] mode = dask, [server] expose_pid = true; each instance is named
instance-N in /health.

Each instance's nginx front believes the X-Forwarded-For that HAProxy adds (and only
HAProxy's: FrontOptions.trusted_balancers), so clients stay apart behind it. [server]
drain_s is above HAProxy's detection time (wps_app.ops.balancer.detection_s), so an
instance sent SIGTERM is out of HAProxy's rotation before it refuses anything.

Command line: python -m devtools.cluster [--port 5000] [--instances 2] [--workers 2]
(WPS_WMS_URL: use that WMS instead of starting the embedded MapServer). It prints the
URLs once the service answers through HAProxy, and Ctrl-C or SIGTERM stops all of it.

    python -m devtools.cluster restart [--rundir DIR] [--instance N ...]

restarts instance N (default: every instance, one at a time) of the cluster running in DIR
without a failed request: it asks that cluster over the Unix socket `control.sock` in its
run folder (devtools.cluster_control); the cluster drains the instance's gunicorn (SIGTERM:
HAProxy takes it out, in-flight requests are answered), starts a new gunicorn on the same
port (and a new nginx front if the old one is gone), and answers once the instance is
back in HAProxy's rotation. An instance that was killed is started again the same way.
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

from devtools import cluster_control, dask_procs, embedded_wms
from devtools.embedded_wms import free_port
from devtools.postgres import Postgres, start_postgres
from devtools.servers import Overrides
from wps_app.ops import balancer, front, serve
from wps_app.ops.gunicorn_drain import graceful_timeout
from wps_app.ops.processes import stop_group, wait_until_answering
from wps_app.settings import REPO_ROOT, load_settings


@dataclass
class Instance:
    """One API instance: nginx front -> gunicorn, each in its own session, on ports kept
    across restarts (HAProxy's configuration names the front's)."""

    number: int
    front_port: int
    app_port: int
    folder: Path
    config: Path
    gunicorn_workers: int
    gunicorn: subprocess.Popen | None = None
    nginx: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"instance-{self.number}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    @property
    def url(self) -> str:
        return f"{self.base}/wps"

    @property
    def run_folder(self) -> Path:
        """gunicorn's run folder ($EDGE_WPS_RUNDIR: draining flag, metrics)."""
        return self.folder / "run"

    def start_gunicorn(self) -> None:
        env = dict(os.environ, PYWPS_CFG=str(self.config), WPS_SERVER_INSTANCE=self.name,
                   HOME=str(self.folder), EDGE_WPS_RUNDIR=str(self.run_folder))
        env.pop("WPS_WMS_URL", None)  # the configuration file has it
        self.gunicorn = serve.start_gunicorn(f"127.0.0.1:{self.app_port}",
                                             self.gunicorn_workers,
                                             log=self.folder / "gunicorn.log", env=env)

    def start_front(self) -> None:
        # HAProxy connects from 127.0.0.1: only its X-Forwarded-For is believed
        self.nginx = front.start(front.FrontOptions(
            listen=f"127.0.0.1:{self.front_port}", upstream=f"127.0.0.1:{self.app_port}",
            rundir=(self.folder / "front").resolve(), trusted_balancers=("127.0.0.1",)))

    def kill(self) -> None:
        """Kill this instance at once (SIGKILL to both sessions), as a crashed host."""
        stop_group(self.gunicorn, 0, first=signal.SIGKILL)
        stop_group(self.nginx, 0, first=signal.SIGKILL)

    def drain(self) -> None:
        """SIGTERM to gunicorn's master, which drains (wps_app.ops.gunicorn_drain); wait
        for it and its workers to leave (SIGKILL after what the drain may take)."""
        settings = load_settings([self.config])
        serve.stop_gunicorn(self.gunicorn, settings.drain_s + 2 * graceful_timeout(
            settings.sync_max_runtime_s) + 5)

    def stop(self) -> None:
        """Stop gunicorn without its drain's first phase (HAProxy is stopped first, so no
        new request can come; a second SIGTERM skips it), then its front."""
        if self.gunicorn.poll() is None:
            self.gunicorn.send_signal(signal.SIGTERM)
            # the second SIGTERM must come after the first was handled (signals merge)
            pause = threading.Event()
            while (self.gunicorn.poll() is None
                   and not (self.run_folder / "draining").exists()
                   and not pause.wait(0.1)):
                pass
        serve.stop_gunicorn(self.gunicorn, 60)
        front.stop(self.nginx)


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
    # one restart (or the final stop) at a time
    lock: threading.Lock = field(default_factory=threading.Lock)

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

    def restart_instance(self, number: int, timeout_s: float = 120.0) -> int:
        """Restart instance `number` without a failed request (drained if it runs, started
        again on its ports, its front too if that is gone) and return once HAProxy sends
        it requests again; the new gunicorn master's pid."""
        if not 1 <= number <= len(self.instances):
            raise ValueError(f"no instance {number} (1..{len(self.instances)})")
        instance = self.instances[number - 1]
        with self.lock:
            if instance.gunicorn.poll() is None:
                instance.drain()
            else:  # killed: what may be left of its group
                stop_group(instance.gunicorn, 0, first=signal.SIGKILL)
            if instance.nginx.poll() is not None:
                stop_group(instance.nginx, 0, first=signal.SIGKILL)
                instance.start_front()
            instance.start_gunicorn()
            wait_until_answering(f"{instance.base}/health",
                                 [instance.gunicorn, instance.nginx], timeout_s)
            balancer.wait_until_up(self.rundir / "haproxy", instance.name, timeout_s)
            return instance.gunicorn.pid

    def stop(self) -> None:
        """Stop everything, the entry first and the job store last."""
        with self.lock:
            self._stop()

    def _stop(self) -> None:
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
                   "parallelprocesses": str(worker_threads),
                   # HAProxy takes a draining instance out before it refuses anything
                   "drain_s": str(balancer.detection_s() + 1)},
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
    instance = Instance(number, free_port(), free_port(), folder, config, gunicorn_workers)
    instance.start_gunicorn()
    instance.start_front()
    return instance


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
        try:
            wait_until_answering(f"{cluster.url}?service=WPS&request=GetCapabilities",
                                 [cluster.haproxy], timeout_s)
        except RuntimeError as exc:  # say why: HAProxy's own words are in its log
            log = rundir / "haproxy" / "haproxy.log"
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            raise RuntimeError(f"{exc}; HAProxy said: {' | '.join(tail)}") from None
        for instance in cluster.instances:  # in HAProxy's rotation, all of them
            balancer.wait_until_up(rundir / "haproxy", instance.name, timeout_s)
        dask_procs.wait_for_workers(scheduler_address, workers, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def restart_main(argv: list[str]) -> int:
    """python -m devtools.cluster restart [--rundir DIR] [--instance N ...]"""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cluster restart",
        description="restart instances of a running make cluster, one at a time, "
                    "without a failed request")
    parser.add_argument("--rundir", type=Path, default=REPO_ROOT / "var" / "cluster")
    parser.add_argument("--instance", type=int, action="append",
                        help="instance number (repeat; default: every instance)")
    args = parser.parse_args(argv)
    numbers = args.instance
    if not numbers:
        count = sum(1 for folder in args.rundir.glob("instance-*") if folder.is_dir())
        numbers = list(range(1, count + 1))
    for number in numbers:
        try:
            pid = cluster_control.restart(args.rundir, number)
        except (OSError, RuntimeError) as exc:
            print(f"instance {number}: not restarted: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"instance {number}: restarted, gunicorn master {pid}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["restart"]:
        return restart_main(argv[1:])
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
    cluster_control.socket_path(args.rundir)  # a run folder too deep fails now, not later
    cluster = start_cluster(args.rundir, port=args.port, instances=args.instances,
                            workers=args.workers, wms_url=os.environ.get("WPS_WMS_URL"),
                            gunicorn_workers=args.gunicorn_workers)
    stop_control = None
    try:
        stop_control = cluster_control.serve(cluster.rundir, cluster.restart_instance)
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
        if stop_control is not None:
            stop_control()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
