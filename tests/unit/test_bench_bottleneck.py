"""bench.bottleneck's formula and bench.shared_costs' statement classification, against
values worked out by hand."""

from __future__ import annotations

import math

import pytest

from bench import bottleneck
from bench.shared_costs import is_heartbeat, statement_kind

STORE = bottleneck.Part("store", "statements", capacity_per_s=1000.0, per_job=40.0,
                        per_running_s=bottleneck.heartbeat_load(3.0, 30.0),
                        per_poll=4.0, per_api_process_s=3.0)


def test_heartbeat_load_is_three_per_lease():
    # 3 statements every 30 / 3 = 10 s
    assert bottleneck.heartbeat_load(3.0, 30.0) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        bottleneck.heartbeat_load(3.0, 0.0)


def test_ceiling_by_hand():
    # a 20 s job polled every 2 s: 40 + 4 x 10 + 20 x 0.3 = 86 statements per job;
    # 10 API processes use 30 of the 1000 statements/s: 970 / 86 jobs/s
    assert bottleneck.ceiling(STORE, 20.0, 2.0, 10) == pytest.approx(970 / 86)


def test_load_at_the_ceiling_is_the_capacity():
    rate = bottleneck.ceiling(STORE, 20.0, 2.0, 10)
    assert bottleneck.load_per_s(STORE, rate, 20.0, 2.0, 10) == pytest.approx(1000.0)
    # Little's law: 1 job/s of 20 s jobs keeps 20 running, 20 x 0.3 heartbeat statements/s
    assert bottleneck.load_per_s(STORE, 1.0, 20.0, 2.0, 0) == pytest.approx(80 + 6)


def test_ceiling_edges():
    assert bottleneck.ceiling(STORE, 20.0, 2.0, 400) == 0.0  # reapers alone fill it
    free = bottleneck.Part("free", "x", 10.0, 0.0)
    assert math.isinf(bottleneck.ceiling(free, 5.0, 1.0, 3))


def test_first_bottleneck_and_worker_hosts():
    folder = bottleneck.Part("folder", "files", capacity_per_s=300.0, per_job=30.0)
    name, limit, ceilings = bottleneck.first_bottleneck([STORE, folder], 20.0, 2.0, 10)
    assert (name, limit) == ("folder", pytest.approx(10.0))  # the store's is 970 / 86
    assert ceilings["store"] == pytest.approx(970 / 86)
    name, limit, _ = bottleneck.first_bottleneck([STORE, folder], 20.0, 2.0, 100)
    assert name == "store" and limit == pytest.approx(700 / 86)  # more API processes
    # 10 jobs/s of 20 s on hosts of 2 job threads: 100 hosts
    assert bottleneck.worker_hosts_at(10.0, 2, 20.0) == pytest.approx(100.0)
    assert bottleneck.worker_ceiling(100, 2, 20.0) == pytest.approx(10.0)


def test_statement_kinds_as_pg_stat_statements_stores_them():
    assert statement_kind("UPDATE edge_jobs SET lease_expires=$1 WHERE x") == "UPDATE"
    assert statement_kind("  select 1") == "SELECT"
    assert statement_kind("BEGIN") == "other"
    assert statement_kind("") == "other"
    assert is_heartbeat("UPDATE edge_jobs SET lease_expires=$1 WHERE edge_jobs.job_id = $2")
    assert not is_heartbeat("UPDATE edge_jobs SET progress=$1, message=$2, "
                            "lease_expires=$3 WHERE edge_jobs.job_id = $4")
    assert not is_heartbeat("SELECT lease_expires FROM edge_jobs WHERE x")
