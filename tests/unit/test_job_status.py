"""Failed status documents of reaped jobs: PyWPS's execute template (our corrected copy),
valid against the WPS 1.0.0 schema, keeping what the client was told, written atomically."""

from __future__ import annotations

import datetime

from lxml import etree
from pywps import Process
from schemas.validate import validate

from wps_app.jobs import LEASE_EXPIRED, Job
from wps_app.wps.job_status import failed_status_document, publish_failures
from wps_app.wps.responses import shared_environment

NS = {"wps": "http://www.opengis.net/wps/1.0.0", "ows": "http://www.opengis.net/ows/1.1"}
NOW = datetime.datetime(2024, 5, 1, 8, 0, 0, tzinfo=datetime.UTC)
STATUS_URL = "http://127.0.0.1:8080/geo/outputs/job-1.xml"
SERVICE_URL = "http://127.0.0.1:8080/geo/wps?request=GetCapabilities&service=WPS"


def process() -> Process:
    return Process(handler=lambda request, response: response, identifier="edge",
                   title="Edge filter", abstract="Edges of a WMS layer", version="1.2",
                   store_supported=True, status_supported=True)


def failed_job(**changes) -> Job:
    values = dict(job_id="job-1", process_id="edge", binding="wps", status="failed",
                  queued=False, progress=40.0, message=LEASE_EXPIRED, created=NOW,
                  started=NOW, finished=NOW, updated=NOW, lease_expires=None,
                  workdir=None)
    return Job(**{**values, **changes})


def started_document() -> bytes:
    """What a client polled before the job's worker died (rendered as PyWPS renders it)."""
    return shared_environment().get_template("1.0.0/execute/main.xml").render(
        language="fr-CA", service_instance=SERVICE_URL, status_location=STATUS_URL,
        process=process(), status={"status": "started", "time": "2024-05-01T07:59:00Z",
                                   "percent_done": "40", "message": "filtering"},
    ).encode()


def parsed(document: str) -> etree._Element:
    content = document.encode()
    assert validate(content) == [], validate(content)
    return etree.fromstring(content)


def test_the_failure_replaces_the_started_status_and_keeps_the_urls():
    doc = parsed(failed_status_document(failed_job(), process(), started_document()))
    assert doc.findtext("wps:Process/ows:Identifier", None, NS) == "edge"
    assert doc.findtext("wps:Process/ows:Title", None, NS) == "Edge filter"
    assert doc.find("wps:Process", NS).get(f"{{{NS['wps']}}}processVersion") == "1.2"
    text = doc.findtext("wps:Status/wps:ProcessFailed/ows:ExceptionReport/ows:Exception/"
                        "ows:ExceptionText", None, NS)
    assert text == LEASE_EXPIRED
    assert doc.find(".//wps:ProcessStarted", NS) is None
    assert doc.get("statusLocation") == STATUS_URL
    assert doc.get("serviceInstance") == SERVICE_URL
    assert doc.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr-CA"


def test_without_an_earlier_document_the_configured_urls_are_used():
    doc = parsed(failed_status_document(failed_job(), process(), None))
    assert doc.get("statusLocation").endswith("/job-1.xml")
    assert "request=GetCapabilities" in doc.get("serviceInstance")


def test_a_process_no_longer_offered_is_named_by_its_id():
    doc = parsed(failed_status_document(failed_job(process_id="retired"), None, b"<broken"))
    assert doc.findtext("wps:Process/ows:Identifier", None, NS) == "retired"


def test_the_message_is_escaped():
    doc = parsed(failed_status_document(failed_job(message="a <b> & 'c'"), process()))
    assert doc.findtext(".//ows:ExceptionText", None, NS) == "a <b> & 'c'"


def test_publish_rewrites_wps_documents_only_and_removes_work_folders(tmp_path):
    workdir = tmp_path / "work" / "pywps_process_x"
    workdir.mkdir(parents=True)
    (workdir / "part.tif").write_bytes(b"x")
    status_dir = tmp_path / "outputs"
    status_dir.mkdir()
    (status_dir / "job-1.xml").write_bytes(started_document())
    publish_failures([failed_job(workdir=str(workdir)),
                      failed_job(job_id="job-2", binding="ogcapi")],
                     {"edge": process()}, status_dir)
    assert sorted(p.name for p in status_dir.iterdir()) == ["job-1.xml"]  # no temp file left
    doc = parsed((status_dir / "job-1.xml").read_text())
    assert doc.find(".//wps:ProcessFailed", NS) is not None
    assert doc.get("statusLocation") == STATUS_URL
    assert not workdir.exists()
