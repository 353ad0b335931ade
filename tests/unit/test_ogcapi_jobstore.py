"""JobStore.dismiss_ended, added for OGC API - Processes dismiss of finished jobs."""

from __future__ import annotations

from wps_app.jobs import JobStore, Limits


def _store(tmp_path) -> JobStore:
    store = JobStore.from_url(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    store.migrate()
    return store


def test_dismiss_ended_marks_finished_jobs_only(tmp_path):
    """A succeeded job becomes dismissed; an unfinished one is left to dismiss()."""
    store = _store(tmp_path)
    store.register("a", "p", "ogcapi", limits=Limits())
    store.register("b", "p", "ogcapi", limits=Limits())
    store.start("a")
    store.finish("a")
    assert store.dismiss_ended("a") is True
    assert store.get("a").status == "dismissed"
    assert store.dismiss_ended("a") is False
    assert store.dismiss_ended("b") is False
    assert store.get("b").status == "accepted"
