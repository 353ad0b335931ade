"""Job-store schema migrations on a SQLite file: from the tables of the code before the
JobStore (version 1), and from version 2 (before attempts), to the current version,
idempotent, and once when several workers start."""

from __future__ import annotations

import time

import pytest
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
from sqlalchemy import text

from wps_app.jobs import JobStore, SchemaTooNew
from wps_app.jobs.schema import SCHEMA_VERSION


@pytest.fixture
def local_time_not_utc(monkeypatch):
    """Run in a zone 5 h behind UTC, so that local times must really be converted."""
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def legacy_url(tmp_path, local_time_not_utc) -> str:
    url = f"sqlite:///{tmp_path}/pywps-logs.sqlite"
    create_legacy(JobStore.from_url(url).engine)
    return url


def test_version_1_migrates_with_its_jobs(legacy_url):
    store = JobStore.from_url(legacy_url, clock=lambda: MIGRATED_AT)
    assert store.migrate() == (1, SCHEMA_VERSION)
    check_migrated(store)
    check_store_takes_over(store)


def test_migrating_twice_changes_nothing(legacy_url):
    store = JobStore.from_url(legacy_url, clock=lambda: MIGRATED_AT)
    store.migrate()
    before = [store.get(job.job_id) for job in store.list()]
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert [store.get(job.job_id) for job in store.list()] == before


def test_workers_starting_together_migrate_once(legacy_url):
    results = migrate_concurrently(legacy_url)
    assert sorted(results) == [(1, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 5
    store = JobStore.from_url(legacy_url, clock=lambda: MIGRATED_AT)
    assert row_count(store) == 4
    check_migrated(store)


def test_a_newer_schema_is_refused(tmp_path):
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite")
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE edge_schema_version SET version = 99"))
    with pytest.raises(SchemaTooNew):
        store.migrate()


def test_version_2_migrates_in_place_to_attempts(tmp_path):
    """v2 -> v3 adds attempt and worker to every row, keeping everything else."""
    url = f"sqlite:///{tmp_path}/v2.sqlite"
    create_version_2(JobStore.from_url(url).engine)
    store = JobStore.from_url(url, clock=lambda: V2_MIGRATED_AT)
    assert store.migrate() == (2, SCHEMA_VERSION)
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    check_migrated_to_3(store)


def test_version_2_workers_starting_together_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path}/v2.sqlite"
    create_version_2(JobStore.from_url(url).engine)
    assert sorted(migrate_concurrently(url)) == [(2, SCHEMA_VERSION)] + [
        (SCHEMA_VERSION, SCHEMA_VERSION)] * 5
    check_migrated_to_3(JobStore.from_url(url, clock=lambda: V2_MIGRATED_AT))
