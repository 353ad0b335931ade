"""Each job's cost to the shared parts, each part's capacity here, and the first bottleneck.

On `make cluster`'s topology (devtools.cluster, loopback; 2 instances of one gunicorn sync
worker, 2 Dask workers of one job thread, [jobs] lease_s = LEASE_S so that heartbeats show),
batches of K jobs of one kind run while these are counted:

- PostgreSQL (the job store): statements by kind (pg_stat_statements, loaded for the bench
  only; BEGIN/COMMIT counted as "other"), rows, and WAL bytes (pg_current_wal_lsn deltas);
- the shared folder: files created, closed after writing, renamed, deleted and the bytes of
  the files written (bench.fswatch, inotify), by area (outputs/, work/);
- the Dask scheduler: messages received on streams, RPC messages handled, messages sent to
  workers and clients, task transitions (bench.dask_counters says which counters);
- the status GETs the client's polling sends (every POLL_S seconds) to the instances.

Background load (HAProxy's health checks, Dask heartbeats) is measured over an idle window
first and subtracted from each batch at its duration. Then each part's capacity is measured
cheaply on this machine: the store's job statement mix from K threads (bench.shared_costs'
own loop on JobStore), atomic small-file writes in the shared folder, noop tasks through
the scheduler. bench.bottleneck turns capacity / cost per job into jobs/s per part.

Command line: python -m bench.shared_costs [--jobs 4] [--large 4096]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import requests

from bench import bottleneck, dask_counters
from bench.fswatch import FolderWatch
from devtools.cluster import start_cluster

LEASE_S = 6.0  # heartbeats every 2 s (the default lease_s = 30 gives one every 10 s)
PRODUCTION_LEASE_S = 30.0  # [jobs] lease_s's default, for the formula
HEARTBEAT_STATEMENTS = 3.0  # JobStore.heartbeat: BEGIN, UPDATE, COMMIT
POLL_S = 0.5
IDLE_S = 6.0
REAPER_INTERVAL_S = 2.0  # wps_app.wps.reaper.Reaper's default: a pass per process at most
PG_OPTIONS = "-c shared_preload_libraries=pg_stat_statements"
POINT = {"wms": "sample_city", "lat": 45.5541, "lon": -73.4936}
_STATUS = re.compile(rb"<wps:(ProcessSucceeded|ProcessFailed)")


# counters -------------------------------------------------------------------------------

class Meters:
    """Snapshots of every counter of the running cluster."""

    def __init__(self, cluster, client) -> None:
        self.cluster = cluster
        self.client = client
        self.pg = psycopg2.connect(host="127.0.0.1", port=cluster.postgres.port,
                                   user="postgres", dbname="postgres")
        self.pg.autocommit = True
        # the view, in this bench's own database: its queries are not the store's
        self.pg.cursor().execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.watch = FolderWatch(cluster.rundir / "shared")
        client.run_on_scheduler(dask_counters.install)

    def snapshot(self) -> Counter:
        found: Counter = Counter()
        with self.pg.cursor() as cur:
            cur.execute("SELECT s.query, s.calls, s.rows, s.wal_bytes FROM pg_stat_statements s"
                        " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'wps'")
            for query, calls, rows, wal in cur.fetchall():
                kind = statement_kind(query)
                found[("pg", kind)] += calls
                found[("pg", "statements")] += calls
                found[("pg", "rows")] += rows
                found[("pg", "stmt_wal")] += int(wal)
                if kind == "UPDATE" and is_heartbeat(query):
                    found[("pg", "heartbeats")] += calls
            cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            found[("pg", "wal")] = int(cur.fetchone()[0])
            # sessions opened: the store pools no connection, one per transaction
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = 'wps'")
            found[("pg", "connections")] = int(cur.fetchone()[0])
        for key, value in self.watch.snapshot().items():
            found[("fs", key)] = value
        counts = self.client.run_on_scheduler(dask_counters.scheduler_counts)
        found[("dask", "transitions")] = counts["transitions"]
        found[("dask", "stream in")] = sum(counts["stream_in"].values())
        found[("dask", "rpc")] = sum(counts["rpc"].values())
        found[("dask", "to workers")] = counts["to_workers"]
        found[("dask", "to clients")] = counts["to_clients"]
        found[("dask", "from workers")] = sum(
            self.client.run(dask_counters.worker_count).values())
        return found

    def run_seconds(self, job_ids: list[str]) -> float:
        """Mean seconds the jobs ran on a worker (the store's started..finished)."""
        with psycopg2.connect(host="127.0.0.1", port=self.cluster.postgres.port,
                              user="postgres", dbname="wps") as conn, conn.cursor() as cur:
            cur.execute("SELECT avg(extract(epoch FROM finished - started)) FROM edge_jobs "
                        "WHERE job_id = ANY(%s)", (job_ids,))
            return float(cur.fetchone()[0])

    def close(self) -> None:
        self.watch.stop()
        self.pg.close()


def statement_kind(query: str) -> str:
    """INSERT, UPDATE, SELECT, DELETE or other (BEGIN, COMMIT, locks, DDL)."""
    word = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    return word if word in ("INSERT", "UPDATE", "SELECT", "DELETE") else "other"


def is_heartbeat(query: str) -> bool:
    """JobStore.heartbeat's UPDATE: it sets lease_expires and nothing else."""
    match = re.search(r"\bSET\s+(.*?)\s+WHERE\b", query, re.I | re.S)
    return bool(match) and [c.split("=")[0].strip() for c in match.group(1).split(",")] \
        == ["lease_expires"]


def scheduler_messages(delta: dict) -> float:
    """Every message through the scheduler: received (streams, RPC) and sent."""
    return sum(delta.get(("dask", k), 0.0)
               for k in ("stream in", "rpc", "to workers", "to clients"))


def per_unit(before: Counter, after: Counter, seconds: float, idle: dict, count: int
             ) -> dict:
    """(after - before - idle rate x seconds) / count for every counter, floored at 0."""
    keys = set(before) | set(after)
    return {k: max(0.0, (after[k] - before[k] - idle.get(k, 0.0) * seconds) / count)
            for k in keys}


# jobs -----------------------------------------------------------------------------------

def wps_async(base: str, size: int, index: int) -> str:
    """Submit a WPS async Execute (PNG + GeoTIFF by reference); its statusLocation."""
    answer = requests.get(f"{base}/wps", params={
        "service": "WPS", "version": "1.0.0", "request": "Execute",
        "identifier": "get_raster_process",
        "DataInputs": f"wms=sample_city;lat={POINT['lat'] + (index % 10) * 2e-5:.6f};"
                      f"lon={POINT['lon']:.6f};width={size};height={size}",
        "ResponseDocument": "image@asReference=true;geotiff@asReference=true",
        "storeExecuteResponse": "true", "status": "true"}, timeout=60)
    found = re.search(rb'statusLocation="([^"]+)"', answer.content)
    if answer.status_code != 200 or not found:
        raise RuntimeError(f"WPS async Execute: HTTP {answer.status_code} {answer.text[300:800]}")
    return found.group(1).decode()


def wps_ended(url: str) -> bool:
    match = _STATUS.search(requests.get(url, timeout=30).content)
    if match and match.group(1) == b"ProcessFailed":
        raise RuntimeError("a WPS job failed")
    return bool(match)


def ogc_async(base: str, size: int, index: int) -> str:
    """Submit an OGC API async execution (both outputs by reference); its status URL."""
    body = {"inputs": dict(POINT, lat=POINT["lat"] + (index % 10) * 2e-5, width=size, height=size),
            "outputs": {"image": {"transmissionMode": "reference"},
                        "geotiff": {"transmissionMode": "reference"}}}
    answer = requests.post(f"{base}/ogcapi/processes/get_raster_process/execution",
                           json=body, headers={"Prefer": "respond-async"}, timeout=60)
    if answer.status_code != 201:
        raise RuntimeError(f"OGC API async execution: HTTP {answer.status_code}")
    return f"{base}/ogcapi/jobs/{answer.json()['jobID']}"


def ogc_ended(url: str) -> bool:
    status = requests.get(url, timeout=30).json()["status"]
    if status == "failed":
        raise RuntimeError("an OGC API job failed")
    return status == "successful"


def sync_execute(base: str, size: int, index: int) -> None:
    answer = requests.get(f"{base}/wps", params={
        "service": "WPS", "version": "1.0.0", "request": "Execute",
        "identifier": "get_raster_process",
        "DataInputs": f"wms=sample_city;lat={POINT['lat'] - (index % 10) * 2e-5:.6f};"
                      f"lon={POINT['lon']:.6f};width={size};height={size}",
        "RawDataOutput": "image@mimeType=image/png"}, timeout=120)
    if answer.status_code != 200 or not answer.content.startswith(b"\x89PNG"):
        raise RuntimeError(f"sync Execute: HTTP {answer.status_code}")


def run_async(base: str, submit, ended, size: int, count: int, first: int
              ) -> tuple[list[float], int, list[str]]:
    """Submit `count` jobs, poll each every POLL_S until all ended: (durations s as the
    client saw them, status GETs sent, status URLs)."""
    started, urls = [], []
    for index in range(first, first + count):
        started.append(time.perf_counter())
        urls.append(submit(base, size, index))
    durations: dict[int, float] = {}
    polls = 0
    deadline = time.monotonic() + 600
    while len(durations) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("jobs still running after 600 s")
        round_started = time.monotonic()
        for i, url in enumerate(urls):
            if i not in durations:
                polls += 1
                if ended(url):
                    durations[i] = time.perf_counter() - started[i]
        time.sleep(max(0.0, POLL_S - (time.monotonic() - round_started)))
    return [durations[i] for i in range(count)], polls, urls


# capacities -----------------------------------------------------------------------------

def store_capacity(meters: Meters, pooled: bool, threads: int = 4, jobs: int = 150
                   ) -> dict[str, float]:
    """What the store sustains from `threads` threads: job cycles/s (register, start,
    progress, heartbeat, finish), heartbeats/s on running jobs, and the statements and
    connections each cycle sends (counted). `pooled`: through a pool of `threads`
    connections instead of wps_app.jobs.db's one connection per transaction."""
    import sqlalchemy

    from wps_app.jobs import JobStore, Limits

    url = meters.cluster.database
    store = (JobStore(sqlalchemy.create_engine(url, pool_size=threads), lease_s=LEASE_S)
             if pooled else JobStore.from_url(url, lease_s=LEASE_S))
    limits = Limits(parallel=-1, queued=-1)

    def cycle(_):
        job_id = f"bench-{uuid.uuid4()}"
        store.register(job_id, "get_raster_process", "wps", limits=limits)
        attempt = store.start(job_id)
        store.progress(job_id, 50.0, "half", attempt)
        store.heartbeat(job_id, attempt)
        store.finish(job_id, "done", attempt)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(cycle, range(threads * 2)))  # warm up
        before = meters.snapshot()
        started = time.perf_counter()
        list(pool.map(cycle, range(jobs)))
        cycles_s = jobs / (time.perf_counter() - started)
        after = meters.snapshot()
        running = [f"bench-hb-{uuid.uuid4()}" for _ in range(threads)]
        attempts = {}
        for job_id in running:
            store.register(job_id, "get_raster_process", "wps", limits=limits)
            attempts[job_id] = store.start(job_id)
        started = time.perf_counter()
        list(pool.map(lambda i: store.heartbeat(running[i % threads],
                                                attempts[running[i % threads]]),
                      range(jobs * 4)))
        beats_s = jobs * 4 / (time.perf_counter() - started)
        for job_id in running:
            store.finish(job_id, "done", attempts[job_id])
    store.engine.dispose()
    return {"cycles_s": cycles_s, "beats_s": beats_s,
            "statements": (after[("pg", "statements")] - before[("pg", "statements")]) / jobs,
            "connections": (after[("pg", "connections")] - before[("pg", "connections")])
            / jobs}


def folder_capacity(folder: Path, files: int = 2000, size: int = 2048,
                    big_mib: int = 128) -> tuple[float, float]:
    """(atomic small-file writes/s: write a temporary file, rename it over the target,
    as wps_app.core.writers.write_text_atomically; MiB/s written in 1 MiB chunks)."""
    from wps_app.core.writers import write_text_atomically

    folder.mkdir(parents=True, exist_ok=True)
    text = "x" * size
    started = time.perf_counter()
    for i in range(files):
        write_text_atomically(folder / f"status-{i % 50}.xml", text)
    small = files / (time.perf_counter() - started)
    chunk = os.urandom(1 << 20)
    started = time.perf_counter()
    with open(folder / "big.bin", "wb") as handle:
        for _ in range(big_mib):
            handle.write(chunk)
    big = big_mib / (time.perf_counter() - started)
    for path in folder.iterdir():
        path.unlink()
    return small, big


def scheduler_capacity(client, meters: Meters, tasks: int = 2000) -> tuple[float, float]:
    """(noop tasks/s through the scheduler to its workers, scheduler messages per task)."""
    client.gather(client.map(dask_counters.noop, range(100), pure=False))
    before = meters.snapshot()
    started = time.perf_counter()
    futures = client.map(dask_counters.noop, range(tasks), pure=False)
    client.gather(futures)
    rate = tasks / (time.perf_counter() - started)
    del futures
    after = meters.snapshot()
    return rate, scheduler_messages({k: after[k] - before[k] for k in after}) / tasks


# the run --------------------------------------------------------------------------------

def measure(count: int, large: int) -> None:
    import distributed

    with tempfile.TemporaryDirectory(prefix="bench-costs-") as tmp:
        cluster = start_cluster(Path(tmp), instances=2, workers=2, gunicorn_workers=1,
                                overrides={"jobs": {"lease_s": LEASE_S}},
                                postgres_options=PG_OPTIONS)
        client = distributed.Client(cluster.scheduler_address, set_as_default=False)
        meters = Meters(cluster, client)
        try:
            report(cluster, client, meters, count, large)
        finally:
            meters.close()
            client.close()
            cluster.stop()


def _delta(before: Counter, after: Counter) -> dict:
    return {k: after[k] - before[k] for k in set(before) | set(after)}


def report(cluster, client, meters: Meters, count: int, large: int) -> None:
    base = cluster.base
    # warm every process (layer lists, connections) with one job of each binding
    run_async(base, wps_async, wps_ended, 64, 1, 900)
    run_async(base, ogc_async, ogc_ended, 64, 1, 901)
    sync_execute(base, 64, 902)
    time.sleep(REAPER_INTERVAL_S)  # the idle window below starts with no pass due
    before = meters.snapshot()
    time.sleep(IDLE_S)
    after = meters.snapshot()
    idle = {k: v / IDLE_S for k, v in _delta(before, after).items()}
    # one reaper pass per instance: a GetCapabilities (no store access of its own) each
    before = meters.snapshot()
    for instance in cluster.instances:
        requests.get(f"{instance.url}?service=WPS&request=GetCapabilities", timeout=30)
    reaper = per_unit(before, meters.snapshot(), 0.0, {}, len(cluster.instances))

    kinds = [("WPS async", wps_async, wps_ended, 512), ("OGC async", ogc_async, ogc_ended, 512),
             ("WPS async", wps_async, wps_ended, large),
             ("OGC async", ogc_async, ogc_ended, large)]
    rows = []
    first = 0
    for name, submit, ended, size in kinds:
        before = meters.snapshot()
        started = time.perf_counter()
        _, polls, urls = run_async(base, submit, ended, size, count, first)
        elapsed = time.perf_counter() - started
        time.sleep(0.5)  # the last status rename reaches the watcher
        cost = per_unit(before, meters.snapshot(), elapsed + 0.5, idle, count)
        ids = [u.rsplit("/", 1)[1].removesuffix(".xml") for u in urls]
        rows.append((f"{name} {size}²", cost, meters.run_seconds(ids), polls / count, urls))
        first += count
    before = meters.snapshot()
    started = time.perf_counter()
    for index in range(count):
        sync_execute(base, 512, index)
    elapsed = time.perf_counter() - started
    rows.append(("WPS sync 512²", per_unit(before, meters.snapshot(), elapsed, idle, count),
                 elapsed / count, 0.0, []))

    # one status GET of a finished job, each binding (reaper passes amortised over 20)
    poll_cost = {}
    for label, index, getter in (("WPS", 0, requests.get), ("OGC", 1, requests.get)):
        url = rows[index][4][0]
        before = meters.snapshot()
        started = time.perf_counter()
        for _ in range(20):
            getter(url, timeout=30)
        poll_cost[label] = per_unit(before, meters.snapshot(), time.perf_counter() - started,
                                    idle, 20)

    print_costs(rows, idle, reaper, poll_cost)

    store = {"per transaction": store_capacity(meters, pooled=False),
             "pooled": store_capacity(meters, pooled=True)}
    small_s, mib_s = folder_capacity(cluster.rundir / "shared" / "capacity")
    tasks_s, msgs_per_task = scheduler_capacity(client, meters)
    print_capacities(store, small_s, mib_s, tasks_s, msgs_per_task)
    print_formula(rows, reaper, poll_cost, store, small_s, mib_s, tasks_s * msgs_per_task,
                  len(cluster.instances))


# printing -------------------------------------------------------------------------------

def fs(cost: dict, area: str, kind: str) -> float:
    """A shared-folder count of `area` ("outputs": outputs and status documents; "work":
    the jobs' scratch folders, local disk at best)."""
    return cost.get(("fs", (area, kind)), 0.0)


def folder_ops(cost: dict, area: str = "outputs") -> float:
    """Files closed after writing plus renames: the folder's unit of work."""
    return fs(cost, area, "closed") + fs(cost, area, "renames")


def _pg(cost: dict, key: str) -> float:
    return cost.get(("pg", key), 0.0)


def print_costs(rows, idle, reaper, poll_cost) -> None:
    print(f"Per job, background subtracted (idle rates over {IDLE_S:.0f} s: "
          f"{_pg(idle, 'statements'):.1f} statements/s, "
          f"{scheduler_messages(idle):.1f} scheduler messages/s: Dask heartbeats). "
          f"[jobs] lease_s = {LEASE_S:g} here (a heartbeat every {LEASE_S / 3:g} s); the "
          f"client polls every {POLL_S:g} s; run s: started to finished in the store, on a "
          "worker; 2 workers of one job thread.\n")
    print("| jobs | run s | status GETs | SQL statements (INSERT/UPDATE/SELECT/other) | "
          "PostgreSQL connections | heartbeats | rows | WAL KiB | outputs/: files written / "
          "renames / deleted, MiB | work/: files written / deleted, MiB | scheduler messages "
          "(in/RPC/out) | task transitions |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, cost, duration, polls, _ in rows:
        dask = {k[1]: v for k, v in cost.items() if k[0] == "dask"}
        print(f"| {name} | {duration:.2f} | {polls:.1f} | {_pg(cost, 'statements'):.1f} "
              f"({_pg(cost, 'INSERT'):.1f}/{_pg(cost, 'UPDATE'):.1f}/"
              f"{_pg(cost, 'SELECT'):.1f}/{_pg(cost, 'other'):.1f}) | "
              f"{_pg(cost, 'connections'):.1f} | {_pg(cost, 'heartbeats'):.1f} | "
              f"{_pg(cost, 'rows'):.1f} | {_pg(cost, 'wal') / 1024:.1f} | "
              f"{fs(cost, 'outputs', 'closed'):.1f} / {fs(cost, 'outputs', 'renames'):.1f} / "
              f"{fs(cost, 'outputs', 'deleted'):.1f}, "
              f"{fs(cost, 'outputs', 'bytes') / 2**20:.2f} | "
              f"{fs(cost, 'work', 'closed'):.1f} / {fs(cost, 'work', 'deleted'):.1f}, "
              f"{fs(cost, 'work', 'bytes') / 2**20:.2f} | {scheduler_messages(cost):.1f} "
              f"({dask.get('stream in', 0):.1f}/{dask.get('rpc', 0):.1f}/"
              f"{dask.get('to workers', 0) + dask.get('to clients', 0):.1f}) | "
              f"{dask.get('transitions', 0):.1f} |")
    unsized = max(fs(c, a, "unsized") for _, c, *_ in rows for a in ("outputs", "work"))
    print(f"\nA reaper pass (one per API process at most every {REAPER_INTERVAL_S:g} s, on "
          f"WPS requests and status GETs): {_pg(reaper, 'statements'):.1f} statements, "
          f"{_pg(reaper, 'connections'):.1f} connections. One status GET of a finished job "
          "(20 in a row, reaper passes included): "
          + "; ".join(f"{label} {_pg(c, 'statements'):.1f} statements, "
                      f"{_pg(c, 'connections'):.1f} connections"
                      for label, c in poll_cost.items())
          + " (a WPS status document is a file in the shared folder; OGC API status comes "
          "from the store). Files deleted before their size was read: "
          f"{unsized:.1f} per job at most (not in MiB).")


def print_capacities(store, small_s, mib_s, tasks_s, msgs_per_task) -> None:
    print("\nCapacities on this machine (the load generator shares the 2 cores with the "
          "part it loads, so each is a lower bound; PostgreSQL runs with fsync=off, as "
          "devtools.postgres starts it):\n")
    print("| part | measured | in its unit |\n|---|---|---|")
    for label, m in store.items():
        built = label == "per transaction"
        unit = (f"{m['cycles_s'] * m['connections']:.0f} connections/s" if built else
                f"{m['cycles_s'] * m['statements']:.0f} statements/s")
        how = "a connection per transaction (as built)" if built else "a pool of 4 connections"
        print(f"| PostgreSQL, {how} | {m['cycles_s']:.0f} register-start-progress-"
              f"heartbeat-finish cycles/s from 4 threads ({m['statements']:.0f} statements, "
              f"{m['connections']:.0f} connections each); {m['beats_s']:.0f} heartbeats/s "
              f"| {unit} |")
    print(f"| shared folder (local disk here) | {small_s:.0f} atomic 2 KiB writes/s "
          f"(temporary file + rename); {mib_s:.0f} MiB/s in 1 MiB writes | "
          f"{small_s * 2:.0f} files written + renames/s |")
    print(f"| Dask scheduler | {tasks_s:.0f} noop tasks/s on 2 workers ({msgs_per_task:.1f} "
          f"messages each) | {tasks_s * msgs_per_task:.0f} messages/s |")


def shared_parts(cost: dict, polls: float, poll: dict, reaper: dict, store: dict,
                 small_s: float, mib_s: float, sched_msgs_s: float) -> list[bottleneck.Part]:
    """The shared parts with one kind of job's measured costs (heartbeats and polls taken
    out of the per-job count: the formula adds them back at the production lease_s)."""
    plain, pooled = store["per transaction"], store["pooled"]
    beats = _pg(cost, "heartbeats")
    return [
        bottleneck.Part(
            "PostgreSQL", "connections", plain["cycles_s"] * plain["connections"],
            max(0.0, _pg(cost, "connections") - beats - polls * _pg(poll, "connections")),
            per_running_s=bottleneck.heartbeat_load(1.0, PRODUCTION_LEASE_S),
            per_poll=_pg(poll, "connections"),
            per_api_process_s=_pg(reaper, "connections") / REAPER_INTERVAL_S),
        bottleneck.Part(
            "PostgreSQL pooled", "statements", pooled["cycles_s"] * pooled["statements"],
            max(0.0, _pg(cost, "statements") - beats * HEARTBEAT_STATEMENTS
                - polls * _pg(poll, "statements")),
            per_running_s=bottleneck.heartbeat_load(HEARTBEAT_STATEMENTS, PRODUCTION_LEASE_S),
            per_poll=_pg(poll, "statements"),
            per_api_process_s=_pg(reaper, "statements") / REAPER_INTERVAL_S),
        bottleneck.Part("shared folder files", "files + renames", small_s * 2,
                        folder_ops(cost, "outputs") + folder_ops(cost, "work")),
        bottleneck.Part("shared folder bytes", "MiB", mib_s,
                        (fs(cost, "outputs", "bytes") + fs(cost, "work", "bytes")) / 2**20),
        bottleneck.Part("Dask scheduler", "messages", sched_msgs_s, scheduler_messages(cost)),
    ]


def print_formula(rows, reaper, poll_cost, store, small_s, mib_s, sched_msgs_s,
                  instances) -> None:
    print("\nThe formula (bench/bottleneck.py): a part sustains lambda_max = (capacity - API "
          "processes x reaper load) / (per job + per status GET x run s / poll s + run s x "
          "per running second) jobs/s, the per-running-second load being the heartbeats "
          f"(3 / lease_s per running job; lease_s = {PRODUCTION_LEASE_S:g}, the default, "
          "here); W worker hosts of one job thread finish at most W / run s jobs/s, so the "
          "lowest lambda_max is reached at lambda_max x run s worker hosts. PostgreSQL "
          "twice: as built (wps_app/jobs/db.py opens a connection per transaction: the "
          "unit is connections) and with a pool (statements). The shared folder counts "
          "outputs/ and work/ together: make cluster puts the jobs' workdir in it, where "
          "the outputs are written and then renamed into outputs/ (with a local workdir they "
          "would be copied in instead: the same bytes). Jobs/s per part at "
          f"{instances} API processes:\n")
    print("| jobs | PostgreSQL as built | PostgreSQL pooled | shared folder files / bytes | "
          "Dask scheduler | first bottleneck | worker hosts to reach it |")
    print("|---|---|---|---|---|---|---|")
    for name, cost, duration, polls, _ in rows[:4]:
        parts = shared_parts(cost, polls, poll_cost["WPS" if name.startswith("WPS") else
                                                    "OGC"], reaper, store, small_s, mib_s,
                             sched_msgs_s)
        first, limit, c = bottleneck.first_bottleneck(parts, duration, POLL_S, instances)
        print(f"| {name}, {duration:.1f} s | {c['PostgreSQL']:.1f} | "
              f"{c['PostgreSQL pooled']:.1f} | {c['shared folder files']:.1f} / "
              f"{c['shared folder bytes']:.1f} | {c['Dask scheduler']:.1f} | {first} | "
              f"{bottleneck.worker_hosts_at(limit, 1, duration):.0f} |")
    name, cost, duration, polls, _ = rows[0]
    parts = shared_parts(cost, polls, poll_cost["WPS"], reaper, store, small_s, mib_s,
                         sched_msgs_s)
    print(f"\nAdding API hosts ({name}, {duration:.1f} s): each API process adds "
          f"{_pg(reaper, 'connections') / REAPER_INTERVAL_S:.1f} connections/s "
          "of reaper passes to the store whatever the jobs (under steady requests); jobs/s "
          "per part:\n")
    print("| API processes | " + " | ".join(p.name for p in parts) + " | first |")
    print("|---|" + "---|" * (len(parts) + 1))
    for processes in (2, 8, 32, 64):
        first, _, c = bottleneck.first_bottleneck(parts, duration, POLL_S, processes)
        print(f"| {processes} | " + " | ".join(f"{c[p.name]:.1f}" for p in parts)
              + f" | {first} |")


NOTE = """
What these numbers can show: the costs per job are counts (statements, connections, files,
messages), not timings, and change little from run to run; the capacities are lower bounds
taken on 2 cores shared with the load generator, the idle cluster and whatever else runs
on the machine, so the ceilings are orders of magnitude, not limits of the design. What
they cannot show: a shared folder on NFS or CephFS (here a local disk: its files/s and
MiB/s are far above a network file system's), PostgreSQL with fsync on its own host, or a
scheduler serving many remote workers. What they say: as built, the job store saturates
first, because wps_app/jobs/db.py opens a PostgreSQL connection per transaction (no pool,
as PyWPS does, for forked job processes): tens of connections per job, against a few
hundred new connections per second here. A connection pool (or PgBouncer in transaction
mode) raises the store's ceiling about fivefold, and it stays first for short jobs; for
large WPS jobs the shared folder's bytes come next. The Dask scheduler is far from the
limit (about 10 messages per job). API hosts load the store only with reaper passes and
OGC API status polls; a WPS status poll reads a file from the shared folder and costs the
store only the reaper pass it may trigger."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="K: jobs per batch")
    parser.add_argument("--large", type=int, default=4096, help="the larger size, pixels")
    args = parser.parse_args(argv)
    measure(args.jobs, args.large)
    print(NOTE)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
