"""The job store on PostgreSQL: migration from the tables of the code before the JobStore
(version 1), idempotent and once when several workers start, and admission under
concurrency (advisory locks)."""

from __future__ import annotations

import itertools
import threading

import pytest
import sqlalchemy
from jobs_v2 import MIGRATED_AT as V2_MIGRATED_AT
from jobs_v2 import check_migrated_to_3, create_version_2
from legacy_jobs import (
    MIGRATED_AT,
    check_migrated,
    check_store_takes_over,
    create_legacy,
    migrate_concurrently,
    row_count,
)

from wps_app.jobs import JobStore, Limits, QueueFull
from wps_app.jobs.schema import SCHEMA_VERSION

_names = itertools.count()


@pytest.fixture
def database(postgres) -> str:
    """The URL of a new, empty database on the test PostgreSQL server."""
    name = f"jobs_{next(_names)}"
    admin = sqlalchemy.create_engine(postgres.url.rsplit("/", 1)[0] + "/postgres",
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def legacy(database) -> str:
    create_legacy(JobStore.from_url(database).engine)
    return database


def test_version_1_migrates_with_its_jobs(legacy):
    store = JobStore.from_url(legacy, clock=lambda: MIGRATED_AT)
    assert store.migrate() == (1, SCHEMA_VERSION)
    check_migrated(store)
    check_store_takes_over(store)


def test_migrating_twice_changes_nothing(legacy):
    store = JobStore.from_url(legacy, clock=lambda: MIGRATED_AT)
    store.migrate()
    before = [store.get(job.job_id) for job in store.list()]
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert [store.get(job.job_id) for job in store.list()] == before


def test_workers_starting_together_migrate_once(legacy):
    assert sorted(migrate_concurrently(legacy)) == [(1, SCHEMA_VERSION)] + [
        (SCHEMA_VERSION, SCHEMA_VERSION)] * 5
    store = JobStore.from_url(legacy, clock=lambda: MIGRATED_AT)
    assert row_count(store) == 4
    check_migrated(store)


def test_a_new_database_migrates_from_nothing_concurrently(database):
    assert sorted(migrate_concurrently(database)) == [(0, SCHEMA_VERSION)] + [
        (SCHEMA_VERSION, SCHEMA_VERSION)] * 5


def test_concurrent_registrations_never_exceed_the_limits(database):
    """Twelve workers (own stores) registering at once: exactly 3 run, 2 wait, 7 refused."""
    JobStore.from_url(database).migrate()
    limits = Limits(parallel=3, queued=2)
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def worker(i: int) -> None:
        store = JobStore.from_url(database)
        barrier.wait()
        try:
            job = store.register(f"j{i}", "p", "wps", limits=limits)
            outcomes.append("queued" if job.queued else "run")
        except QueueFull:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 2 + ["refused"] * 7 + ["run"] * 3


def test_version_2_migrates_in_place_to_attempts(database):
    """v2 -> v3 on PostgreSQL: ALTER TABLE in the serialised migration, once."""
    create_version_2(JobStore.from_url(database).engine)
    assert sorted(migrate_concurrently(database)) == [(2, SCHEMA_VERSION)] + [
        (SCHEMA_VERSION, SCHEMA_VERSION)] * 5
    check_migrated_to_3(JobStore.from_url(database, clock=lambda: V2_MIGRATED_AT))
