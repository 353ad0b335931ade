"""Short form of bench/load.py: bounded concurrent Executes against gunicorn and the real
MapServer; zero errors, distinct valid outputs, stable worker memory, no fd or temp growth."""

from __future__ import annotations

from devtools import loadgen

IN_FLIGHT = 8


def test_load_short_form(load_wps):
    work = load_wps.directory / "work"
    warm = loadgen.run(load_wps.url, count=24, in_flight=IN_FLIGHT, first_index=0)
    assert warm.errors == []
    before = loadgen.snapshot(load_wps.process.pid)
    result = loadgen.run(load_wps.url, count=96, in_flight=IN_FLIGHT, first_index=24)
    after = loadgen.snapshot(load_wps.process.pid)
    print(loadgen.summary(result))
    assert result.errors == []
    assert len(result.urls) == 2 * 96  # every output its own URL
    assert len(result.digests) == 2 * 96  # and its own content (each point differs)
    assert set(after.rss_kib) == set(before.rss_kib)  # no worker died or was replaced
    for pid, rss in after.rss_kib.items():
        assert rss - before.rss_kib[pid] < 48 * 1024, (pid, before.rss_kib[pid], rss)
        assert after.open_fds[pid] <= before.open_fds[pid] + 2, (before.open_fds, after.open_fds)
    assert loadgen.leftover_temp_entries(work) == []
    assert not [p for p in load_wps.output_path.iterdir() if p.name.startswith(".")]
