"""The QGIS plugin (qgis_plugin/wps_processing) in Debian's QGIS, headless: the zip of
`make qgis-plugin` installed into a fresh profile, its provider listing the processes of
two running WPS servers (ours and a minimal PyWPS one), and runs compared with direct WPS
requests, rasterio reprojection and hand-computed gradients and colours.

One QGIS session (tests/support/qgis_plugin_runner.py) runs every step; each test checks
one of them. Progress and cancellation are observed while the job's GetMap waits at a gate
the test's feedback opens, so nothing depends on timing.
"""

from __future__ import annotations

import configparser
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from PIL import Image
from rasterio.warp import transform_bounds
from rasters import execute_bbox, read_url
from reference import aligned, expected_gradient, expected_kernel
from wpsclient import bbox_input, document_output, exception_of, execute_body, literal, post

from wps_app.core import styles

REPO_ROOT = Path(__file__).resolve().parents[2]
SUPPORT = REPO_ROOT / "tests" / "support"
QGIS_PYTHON = "/usr/bin/python3"
OWS = {"ows": "http://www.opengis.net/ows/1.1"}
RASTER_ALG, MINI_ALG = "wps:get_raster_process", "wps:echo_2"
CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
MINI_LABEL = "a & <b>, ü"


def extent(bounds, crs: str) -> str:
    """A Processing extent string: xmin,xmax,ymin,ymax [crs], every digit kept."""
    west, south, east, north = bounds
    return f"{west!r},{east!r},{south!r},{north!r} [{crs}]"


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    """dist/wps_processing.zip as `make qgis-plugin` builds it (copied aside)."""
    subprocess.run(["make", "-s", "qgis-plugin"], cwd=REPO_ROOT, check=True, timeout=120,
                   capture_output=True)
    copy = tmp_path_factory.mktemp("zip") / "wps_processing.zip"
    shutil.copy(REPO_ROOT / "dist" / "wps_processing.zip", copy)
    return copy


@pytest.fixture(scope="module")
def areas(sample) -> dict:
    """Grids aligned with the sample raster (EPSG:4326 bounds) and a 3857 extent."""
    areas = {
        "4326": aligned(sample, 1700, 1900, 240, 160),
        "3857": aligned(sample, 900, 2400, 200, 150),
        # straddles the sample's west edge: the WMS is transparent there, the GeoTIFF NaN
        "edge": aligned(sample, -40, 1500, 160, 120),
        "magnitude": aligned(sample, 2000, 2000, 160, 120),
        "mini": aligned(sample, 100, 100, 50, 40),
    }
    areas["3857_extent"] = transform_bounds("EPSG:4326", "EPSG:3857", *areas["3857"])
    areas["mini_extent"] = transform_bounds("EPSG:4326", "EPSG:3857", *areas["mini"])
    return areas


def raster_params(out: Path, name: str, bounds_text: str, width: int, height: int,
                  method: str, image: bool = False) -> dict:
    params = {"wms": "sample_city", "bbox": bounds_text, "width": width, "height": height,
              "method": method, "geotiff": str(out / f"{name}.tif")}
    if image:
        params["image"] = str(out / f"{name}.png")
    return params


@pytest.fixture(scope="module")
def session(plugin_zip, plugin_wps, mini_wps, wms_gate, areas, tmp_path_factory) -> dict:
    """Everything the QGIS session observed (see qgis_plugin_runner.py), plus its plan."""
    home = tmp_path_factory.mktemp("qgis-home")
    out = tmp_path_factory.mktemp("qgis-out")
    closed = socket.socket()  # bound, never listening: connections are refused, and no
    closed.bind(("127.0.0.1", 0))  # other server can take the port meanwhile
    unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}/wps"
    urls = [plugin_wps.url, mini_wps.url, unreachable]
    refused = raster_params(out, "refused", extent(areas["4326"], "EPSG:4326"), 2000, 1000,
                            "sobel_x")
    runs = {
        "run_4326": {"alg": RASTER_ALG, "params": raster_params(
            out, "run_4326", extent(areas["4326"], "EPSG:4326"), 240, 160, "sobel_y",
            image=True)},
        "run_3857": {"alg": RASTER_ALG, "params": raster_params(
            out, "run_3857", extent(areas["3857_extent"], "EPSG:3857"), 200, 150,
            "prewitt_x")},
        "styled_x": {"alg": RASTER_ALG, "load": True, "params": raster_params(
            out, "styled_x", extent(areas["edge"], "EPSG:4326"), 160, 120, "sobel_x")},
        "styled_magnitude": {"alg": RASTER_ALG, "load": True, "params": raster_params(
            out, "styled_magnitude", extent(areas["magnitude"], "EPSG:4326"), 160, 120,
            "sobel_magnitude") | {"geotiff": "TEMPORARY_OUTPUT"}},
        "refused": {"alg": RASTER_ALG, "params": refused},
        "progress": {"alg": RASTER_ALG, "gate": "progress", "params": raster_params(
            out, "progress", extent(areas["4326"], "EPSG:4326"), 120, 80, "sobel_x")},
        "cancel": {"alg": RASTER_ALG, "gate": "cancel", "params": raster_params(
            out, "cancel", extent(areas["4326"], "EPSG:4326"), 120, 80, "sobel_x")},
        "mini_all": {"alg": MINI_ALG, "params": {
            "factor": 2.75, "count": 7, "flag": True, "label": MINI_LABEL,
            "area": extent(areas["mini_extent"], "EPSG:3857"),
            "report": str(out / "mini_all.txt")}},
        "mini_defaults": {"alg": MINI_ALG, "params": {
            "count": -3, "label": "x", "report": str(out / "mini_defaults.txt")}},
        "mini_out_of_range": {"alg": MINI_ALG, "params": {
            "factor": 9.0, "count": 1, "label": "x", "report": str(out / "never.txt")}},
    }
    style_checks = {
        f"service_style_{method}": {"run": name, "qml": styles.qml_for(method)}
        for name, method in (("styled_x", "sobel_x"), ("styled_magnitude", "sobel_magnitude"))
    }
    plan = {"zip": str(plugin_zip), "urls": urls, "gate": wms_gate.base, "out": str(out),
            "runs": runs, "style_checks": style_checks, "background_urls": [plugin_wps.url]}
    plan_path, results_path = home / "plan.json", home / "results.json"
    plan_path.write_text(json.dumps(plan))
    runtime = home / "xdg"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_RUNTIME_DIR=str(runtime), PYTHONPATH="",
               WPS_PROCESSING_URLS=",".join(urls))
    env.pop("VIRTUAL_ENV", None)
    held_before = wms_gate.held
    done = subprocess.run([QGIS_PYTHON, str(SUPPORT / "qgis_plugin_runner.py"),
                           str(plan_path), str(results_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    closed.close()
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(results_path.read_text())
    return {"results": results, "plan": plan, "home": home, "out": out, "urls": urls,
            "held": wms_gate.held - held_before}


def step(session: dict, name: str) -> dict:
    """A step's observations; a step that raised fails the test with its traceback."""
    observed = session["results"][name]
    assert "error" not in observed, observed["error"]
    return observed


def service_title(url: str) -> str:
    answer = requests.get(url, params={"service": "WPS", "request": "GetCapabilities"},
                          timeout=30)
    return ET.fromstring(answer.content).findtext(".//ows:ServiceIdentification/ows:Title",
                                                  namespaces=OWS)


def allowed_values(url: str, process: str, identifier: str) -> list[str]:
    answer = requests.get(url, params={"service": "WPS", "version": "1.0.0",
                                       "request": "DescribeProcess", "identifier": process},
                          timeout=30)
    for node in ET.fromstring(answer.content).iter("Input"):
        if node.findtext("ows:Identifier", namespaces=OWS) == identifier:
            return [v.text for v in node.iterfind(".//ows:AllowedValues/ows:Value", OWS)]
    raise AssertionError(f"{identifier} not described")


def brute_force_magnitude_max(family: str) -> float:
    kx = expected_kernel(f"{family}_x").ravel()
    ky = expected_kernel(f"{family}_y").ravel()
    corners = np.array(list(itertools.product((0.0, 255.0), repeat=9)))
    return float(np.sqrt((corners @ kx) ** 2 + (corners @ ky) ** 2).max())


def service_items(method: str) -> list[tuple[float, str]]:
    root = ET.fromstring(styles.qml_for(method))
    return [(float(i.get("value")), i.get("color")) for i in root.iter("item")]


# --- 1. the plugin package --------------------------------------------------------------

def test_the_zip_holds_one_plugin_folder_without_caches(plugin_zip):
    """Install from ZIP takes the folder named by metadata.txt's parent: wps_processing/."""
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert all(n.startswith("wps_processing/") for n in names), names
    assert {"wps_processing/metadata.txt", "wps_processing/__init__.py",
            "wps_processing/icon.svg", "wps_processing/provider.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_zip_installs_into_a_fresh_profile_and_starts(session):
    """Unzipped by QGIS's installer code, loaded and started with qgis.utils, iface None."""
    install = step(session, "install")
    assert install["plugins_dir"].startswith(str(session["home"]))
    assert install["loaded"] and install["started"]
    assert install["plugin_file"].startswith(install["plugins_dir"])
    metadata = install["metadata"]
    assert metadata["qgisminimumversion"] == "3.22"
    assert metadata["hasprocessingprovider"] == "yes"
    assert metadata["icon"] in install["files"]


def test_the_plugin_registers_the_wps_provider(session):
    """Provider id `wps`, class wps_processing.provider.WpsProvider, with its icon; headless
    it describes the servers while it loads."""
    install = step(session, "install")
    assert install["provider_class"] == "wps_processing.provider.WpsProvider"
    assert install["provider_icon_null"] is False
    assert install["provider_loading"] is False


def test_a_script_registers_the_provider_without_arguments(session):
    """WpsProvider() added to the registry by a script lists the same algorithms."""
    headless = step(session, "headless")
    assert headless["added"] is True
    assert headless["algorithms"] == sorted([RASTER_ALG, MINI_ALG])


def test_unloading_the_plugin_removes_the_provider(session):
    """qgis.utils.unloadPlugin calls the plugin's unload: the provider leaves the registry."""
    unload = step(session, "unload")
    assert unload == {"unloaded": True, "provider": False}


# --- 2. servers -------------------------------------------------------------------------

def test_processes_of_each_server_are_listed_under_its_title(session, plugin_wps, mini_wps):
    """First server: wps:<id>; second: wps:<id>_2; grouped by each server's own title."""
    algorithms = step(session, "listing")["algorithms"]
    assert sorted(algorithms) == sorted([RASTER_ALG, MINI_ALG])
    assert algorithms[RASTER_ALG]["group"] == service_title(plugin_wps.url)
    assert algorithms[MINI_ALG]["group"] == service_title(mini_wps.url)
    assert algorithms[RASTER_ALG]["group_id"] != algorithms[MINI_ALG]["group_id"]


def test_the_server_list_is_a_processing_setting(session):
    """Settings → Processing → Providers → WPS shows the list (default: what `make run`
    serves) and the timeouts; a list set there is used when WPS_PROCESSING_URLS is unset."""
    settings = step(session, "settings")
    assert settings["shown"]["WPS_SERVERS"] == "http://127.0.0.1:5000/wps"
    assert {"WPS_REQUEST_TIMEOUT", "WPS_JOB_TIMEOUT", "WPS_POLL_INTERVAL"} <= set(
        settings["shown"])
    assert settings["from_settings"] == ["wps:echo"]


def test_an_unreachable_server_is_logged_once(session):
    """The third URL refuses connections: one log line naming it, even after a refresh,
    and the other servers' processes are listed."""
    listing = step(session, "listing")
    unreachable = session["urls"][2]
    assert len([m for m in listing["wps_log"] if unreachable in m]) == 1, listing["wps_log"]
    assert listing["after_refresh"] == sorted([RASTER_ALG, MINI_ALG])


def test_a_silent_server_does_not_hold_up_registration(session):
    """In the background mode (a QGIS window), registering returns while the first server
    has not answered at all; once it fails it is logged once and the next server's
    processes appear with its position's suffix."""
    background = step(session, "background")
    assert background["added"] is True
    assert background["at_return"] == {"loading": True, "algorithms": 0, "logged": []}
    assert background["algorithms"] == ["wps:get_raster_process_2"]
    assert len(background["logged"]) == 1


# --- 3. algorithms from DescribeProcess -------------------------------------------------

def test_the_service_advertises_its_ranges(plugin_wps):
    """DescribeProcess gives width/height 1..the caps, lat -90..90, lon -180..180."""
    answer = requests.get(plugin_wps.url, params={
        "service": "WPS", "version": "1.0.0", "request": "DescribeProcess",
        "identifier": "get_raster_process"}, timeout=30)
    ranges = {}
    for node in ET.fromstring(answer.content).iter("Input"):
        found = node.find(".//ows:AllowedValues/ows:Range", OWS)
        if found is not None:
            ranges[node.findtext("ows:Identifier", namespaces=OWS)] = (
                float(found.findtext("ows:MinimumValue", namespaces=OWS)),
                float(found.findtext("ows:MaximumValue", namespaces=OWS)))
    assert ranges == {"width": (1, 16384), "height": (1, 16384), "lat": (-90, 90),
                      "lon": (-180, 180)}


def test_the_raster_process_parameters_follow_its_description(session, plugin_wps):
    """Allowed values -> enums of static strings, ranges -> bounded numbers, bbox -> an
    optional extent, the GeoTIFF -> a raster destination, the PNG -> a file."""
    parameters = step(session, "listing")["algorithms"][RASTER_ALG]["parameters"]
    assert parameters["wms"]["type"] == "enum" and parameters["wms"]["static_strings"]
    assert parameters["wms"]["options"] == allowed_values(plugin_wps.url,
                                                          "get_raster_process", "wms")
    assert parameters["wms"]["optional"] is False
    assert parameters["method"]["options"] == list(styles.METHODS)
    assert parameters["method"]["default"] == "sobel_x"
    for name in ("width", "height"):
        assert parameters[name] == {
            "type": "number", "optional": True, "default": 512, "data_type": "integer",
            "minimum": 1, "maximum": 16384}
    assert (parameters["lat"]["minimum"], parameters["lat"]["maximum"]) == (-90, 90)
    assert (parameters["lon"]["minimum"], parameters["lon"]["maximum"]) == (-180, 180)
    assert parameters["lat"]["data_type"] == "double" and parameters["lat"]["default"] is None
    assert parameters["bbox"] == {"type": "extent", "optional": True, "default": None}
    assert parameters["cog"]["type"] == "boolean" and parameters["cog"]["default"] is False
    assert parameters["geotiff"]["type"] == "rasterDestination"
    assert parameters["image"]["type"] == "fileDestination"
    assert "*.png" in parameters["image"]["file_filter"]


def test_the_minimal_process_parameters_follow_its_description(session):
    """Float with a range, integer without, boolean, string, CRS84 bbox, text output."""
    algorithm = step(session, "listing")["algorithms"][MINI_ALG]
    parameters = algorithm["parameters"]
    assert parameters["factor"] == {
        "type": "number", "optional": True, "default": 1.5, "data_type": "double",
        "minimum": 0.5, "maximum": 4.0}
    assert parameters["count"]["data_type"] == "integer"
    assert parameters["count"]["minimum"] < -1e300 and parameters["count"]["maximum"] > 1e300
    assert parameters["count"]["optional"] is False
    assert parameters["flag"] == {"type": "boolean", "optional": True, "default": False}
    assert parameters["label"] == {"type": "string", "optional": False, "default": None}
    assert parameters["area"] == {"type": "extent", "optional": True, "default": None}
    assert parameters["report"]["type"] == "fileDestination"
    assert "*.txt" in parameters["report"]["file_filter"]
    assert algorithm["outputs"] == {"report": "outputFile"}


# --- 4./5. running ----------------------------------------------------------------------

def test_an_epsg4326_run_equals_the_direct_wps_result(session, plugin_wps, sample, areas):
    """Pixels, transform and CRS of the plugin's GeoTIFF equal those of the same Execute
    sent directly, and the gradient computed by hand; the PNG equals the direct PNG."""
    run = step(session, "run_4326")
    assert "exception" not in run, run
    bounds = areas["4326"]
    refs = execute_bbox(plugin_wps, bounds, 240, 160, "sobel_y",
                        outputs=(("geotiff", "image/tiff"), ("image", "image/png")))
    direct, transform, crs, _ = read_url(refs["geotiff"])
    with rasterio.open(run["result"]["geotiff"]) as plugin:
        values = plugin.read(1)
        assert plugin.transform == transform
        assert plugin.crs == crs and crs.to_epsg() == 4326
    assert np.array_equal(values, direct, equal_nan=True)
    by_hand = expected_gradient(sample, "sobel_y", 1700, 1900, 240, 160)
    assert np.allclose(values, by_hand, atol=1e-3)
    plugin_png = np.asarray(Image.open(run["result"]["image"]))
    direct_png = np.asarray(Image.open(io.BytesIO(requests.get(refs["image"], timeout=60).content)))
    assert np.array_equal(plugin_png, direct_png)


def max_pixels(server) -> int:
    """The pixel cap in the server's configuration file."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(server.config)
    return config.getint("limits", "max_pixels")


def test_an_epsg3857_run_lands_on_the_transformed_bbox(session, plugin_wps, areas):
    """The 3857 extent reprojected by rasterio (PROJ) is where the GeoTIFF lies; its pixels
    equal the direct Execute over the bbox the service received."""
    run = step(session, "run_3857")
    assert "exception" not in run, run
    expected = transform_bounds("EPSG:3857", "EPSG:4326", *areas["3857_extent"])
    with rasterio.open(run["result"]["geotiff"]) as plugin:
        assert plugin.crs.to_epsg() == 4326
        assert (plugin.width, plugin.height) == (200, 150)
        assert tuple(plugin.bounds) == pytest.approx(expected, abs=1e-9)
        values, received = plugin.read(1), plugin.tags()["BBOX"]
    bbox = tuple(float(v) for v in received.split(","))
    direct, _, _, _ = read_url(execute_bbox(plugin_wps, bbox, 200, 150, "prewitt_x")["geotiff"])
    assert np.array_equal(values, direct, equal_nan=True)


def test_progress_and_status_messages_reach_the_feedback(session, plugin_wps):
    """While the job's GetMap waits at the gate, a status reached the feedback: its
    message by pushInfo, its percentCompleted by setProgress, as the server logged that
    stage; the feedback then opened the gate and the job ended."""
    run = step(session, "progress")
    assert "exception" not in run, run
    assert session["held"] >= 1
    events = run["events"]
    opened = events.index(["gate opened"])
    percent = [e[1] for e in events[:opened] if e[0] == "progress"][-1]
    message = [e[1] for e in events[:opened] if e[0] == "info"][-1]
    assert 0 < percent < 100
    job = job_id(events)
    server_log = (plugin_wps.directory / "gunicorn.log").read_text()
    assert f"job={job} stage={message!r} percent={int(percent)} " in server_log
    assert Path(run["result"]["geotiff"]).is_file()


def job_id(events: list) -> str:
    """The job's id, the stem of the status document the plugin announced."""
    prefix = "Job accepted; status document: "
    (location,) = [e[1][len(prefix):] for e in events
                   if e[0] == "info" and e[1].startswith(prefix)]
    return location.rsplit("/", 1)[-1].removesuffix(".xml")


def test_a_refused_request_raises_the_servers_reason(session, plugin_wps, areas):
    """width x height over max_pixels (each side in range): the QgsProcessingException
    carries the ExceptionText the server gives a direct request, no XML, no traceback."""
    run = step(session, "refused")
    west, south, east, north = areas["4326"]
    answer = post(plugin_wps.url, execute_body(
        [literal("wms", "sample_city"), bbox_input(f"{south!r} {west!r}", f"{north!r} {east!r}"),
         literal("width", 2000), literal("height", 1000)],
        document_output(("geotiff", "image/tiff"))))
    code, locator, text = exception_of(answer)
    assert f"maximum of {max_pixels(plugin_wps)} pixels" in text
    message = run["exception"]
    assert text in message and code in message and locator in message
    assert "<" not in message and "Traceback" not in message


def test_cancel_stops_polling_and_the_job_goes_on(session):
    """Cancelled while the job waits at the gate: no status request after the cancel, an
    exception saying the job may go on, no file; the job then ends on the server."""
    run = step(session, "cancel")
    events = run["events"]
    cancelled = events.index(["cancel"])
    assert not [e for e in events[cancelled:] if e[0] == "debug" and "Polled" in e[1]]
    assert "Cancelled" in run["exception"] and "may go on on the server" in run["exception"]
    assert not Path(session["plan"]["runs"]["cancel"]["params"]["geotiff"]).exists()
    assert run["server_side"] == "ProcessSucceeded"


# --- 5. styled results ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "method", "low_high"), [
    ("styled_x", "sobel_x", (-1020.0, 1020.0)),  # 255 * (1 + 2 + 1), by hand
    ("styled_magnitude", "sobel_magnitude", None),
])
def test_a_loaded_result_is_styled_in_place(session, areas, name, method, low_high):
    """runAndLoadResults (what the toolbox does; to a file, or a temporary output): one
    layer in the project, at its bbox in EPSG:4326, rendered singlebandpseudocolor with the
    ramp ±M / 0..M and transparent nodata: the service's published style gives the same
    ramp."""
    run = step(session, name)
    assert "exception" not in run, run
    (layer,) = run["layers"]
    low, high = low_high or (0.0, brute_force_magnitude_max("sobel"))
    assert layer["renderer"] == "singlebandpseudocolor"
    assert layer["classification"] == pytest.approx([low, high], rel=1e-12)
    assert [v for v, _ in layer["items"]] == pytest.approx(
        list(np.linspace(low, high, 5)), rel=1e-12, abs=1e-9)
    assert [c for _, c in layer["items"]] == [c for _, c in service_items(method)]
    assert layer["nodata_color_valid"] is False
    assert layer["crs"] == "EPSG:4326"
    bounds = areas["edge" if name == "styled_x" else "magnitude"]
    assert layer["extent"] == pytest.approx(list(bounds), abs=1e-12)
    assert layer["source"] == run["result"]["geotiff"] and layer["source"].endswith(".tif")
    service = step(session, f"service_style_{method}")
    assert service["ok"], service["message"]
    assert [c for _, c in service["items"]] == [c for _, c in layer["items"]]
    assert [v for v, _ in service["items"]] == pytest.approx([v for v, _ in layer["items"]])


def ramp_colour(values: np.ndarray, items: list) -> np.ndarray:
    """Linear interpolation of the ramp's RGB between its items, per value (by hand)."""
    stops = [v for v, _ in items]
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for _, c in items], float)
    return np.stack([np.interp(values, stops, rgb[:, k]) for k in range(3)], axis=-1)


def test_the_rendered_layer_shows_nodata_transparent_and_the_ramp(session):
    """The styled sobel_x layer rendered pixel for pixel: transparent exactly where the
    GeoTIFF is NaN, elsewhere the ramp's colour of the value (within 2 levels)."""
    run = step(session, "styled_x")
    (layer,) = run["layers"]
    with rasterio.open(layer["source"]) as geotiff:
        values = geotiff.read(1)
    rendered = np.asarray(Image.open(layer["rendered"]).convert("RGBA")).transpose(2, 0, 1)
    nodata = np.isnan(values)
    assert nodata.any() and not nodata.all()
    assert (rendered[3][nodata] == 0).all() and (rendered[3][~nodata] == 255).all()
    expected = ramp_colour(values[~nodata], layer["items"])
    actual = np.stack([rendered[k][~nodata] for k in range(3)], axis=-1).astype(float)
    assert np.abs(actual - expected).max() <= 2


# --- 3. the second server's inputs ------------------------------------------------------

def test_the_minimal_process_receives_each_input_type(session, areas):
    """Float, integer, boolean, string as given; the 3857 extent as CRS84 lon,lat corners
    (reprojected independently by rasterio)."""
    run = step(session, "mini_all")
    assert "exception" not in run, run
    report = json.loads(Path(run["result"]["report"]).read_text())
    expected_area = transform_bounds("EPSG:3857", "EPSG:4326", *areas["mini_extent"])
    assert report.pop("area") == pytest.approx(list(expected_area), abs=1e-9)
    assert report == {"factor": 2.75, "count": 7, "flag": True, "label": MINI_LABEL,
                      "area_crs": CRS84}


def test_the_minimal_process_keeps_defaults_and_leaves_optional_inputs_out(session):
    """Defaults (factor 1.5, flag false) are sent; the optional bbox is not."""
    run = step(session, "mini_defaults")
    assert "exception" not in run, run
    report = json.loads(Path(run["result"]["report"]).read_text())
    assert report == {"factor": 1.5, "count": -3, "flag": False, "label": "x", "area": None,
                      "area_crs": None}


def test_a_value_outside_the_advertised_range_is_refused_in_qgis(session):
    """factor 9 (range 0.5..4): QGIS refuses it before any request, no file is written."""
    run = step(session, "mini_out_of_range")
    assert "factor" in run["exception"]
    assert not Path(session["plan"]["runs"]["mini_out_of_range"]["params"]["report"]).exists()
