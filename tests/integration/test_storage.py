"""Output storage: the disk cap, an output folder that cannot be written, retention."""

from __future__ import annotations

import os
import time

from wpsclient import (
    document_output,
    exception_of,
    execute_body,
    get,
    literal,
    post,
    raw_output,
    references,
)

from wps_app.jobs import JobStore
from wps_app.ops import cleanup
from wps_app.settings import Settings

POINT = [literal("wms", "sample_city"), literal("lat", 45.554), literal("lon", -73.4935)]
BY_REFERENCE = document_output(("geotiff", "image/tiff"))


CAP_BYTES = 0.1 * 1024 * 1024  # small_disk_wps's max_output_mb
# A 128x128 request's outputs take at most 2 (PNG, grey + alpha) + 4 (float32 GeoTIFF)
# bytes a pixel: 96 KiB, just under the cap.
SMALL = [literal("width", 128), literal("height", 128)]
SMALL_BOUND = 6 * 128 * 128


def test_disk_cap_refuses_publishing_but_not_raw_output(small_disk_wps):
    """Publishing is admitted while what is published plus this request's upper bound fits
    the cap; a request whose upper bound alone exceeds it never starts."""
    first = post(small_disk_wps.url, execute_body(POINT + SMALL, BY_REFERENCE))
    assert first.status_code == 200 and b"ProcessSucceeded" in first.content
    folder = small_disk_wps.output_path / references(first)["geotiff"].rsplit("/", 2)[1]
    published = sum(p.stat().st_size for p in folder.iterdir())
    assert published + SMALL_BOUND > CAP_BYTES  # computed here, from the files themselves
    refused = post(small_disk_wps.url, execute_body(POINT + SMALL, BY_REFERENCE))
    assert refused.status_code == 507
    assert exception_of(refused)[0] == "NotEnoughStorage"
    too_large = post(small_disk_wps.url, execute_body(POINT, BY_REFERENCE))  # 512x512
    assert too_large.status_code == 507
    raw = post(small_disk_wps.url, execute_body(POINT, raw_output()))
    assert raw.status_code == 200 and raw.content.startswith(b"\x89PNG")


def test_unwritable_output_folder_is_a_server_error(unwritable_wps):
    work = unwritable_wps.directory / "work"
    answer = post(unwritable_wps.url, execute_body(POINT, BY_REFERENCE))
    assert answer.status_code == 500
    code, _, text = exception_of(answer)
    assert code == "NoApplicableCode" and "could not publish the outputs" in text
    assert str(unwritable_wps.output_path) not in text  # no server path told
    assert os.listdir(work) == []
    assert unwritable_wps.output_path.read_text() == "not a folder"
    assert get(unwritable_wps.url, request="GetCapabilities").status_code == 200


def test_cleanup_removes_only_expired_entries(tmp_path):
    settings = Settings(output_path=tmp_path / "out", work_path=tmp_path / "work",
                        max_runtime_s=60)
    old, new = time.time() - 48 * 3600, time.time()
    for name, stamp in (("old-job", old), ("new-job", new)):
        folder = settings.output_path / name
        folder.mkdir(parents=True)
        (folder / "x.tif").write_bytes(b"x")
        os.utime(folder, (stamp, stamp))
    for name, stamp in (("old-job.xml", old), ("new-job.xml", new)):
        path = settings.output_path / name
        path.write_text("<x/>")
        os.utime(path, (stamp, stamp))
    stale_work = settings.work_path / "pywps_process_dead"
    stale_work.mkdir(parents=True)
    os.utime(stale_work, (old, old))
    (settings.work_path / "pywps_process_live").mkdir()
    store = JobStore.from_url(f"sqlite:///{tmp_path}/jobs.sqlite")
    store.migrate()
    for job in ("old-job", "new-job"):
        store.record_output(job, 1)
    removed = cleanup.remove_expired(settings, max_age_s=24 * 3600, store=store)
    assert store.storage_used() == 1  # the removed job's outputs are forgotten
    assert sorted(p.name for p in removed) == ["old-job", "old-job.xml", "pywps_process_dead"]
    assert sorted(os.listdir(settings.output_path)) == ["new-job", "new-job.xml"]
    assert os.listdir(settings.work_path) == ["pywps_process_live"]
