"""The map page in a real browser: Debian's chromium driven by Selenium through Debian's
chromedriver (nothing is downloaded), against gunicorn and the sample MapServer."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import rasterio
import requests

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# the test's artefact; data/figures/map-page.png (the README's picture) is a copy of it
FIGURE = Path(__file__).resolve().parents[2] / "var" / "artefacts" / "map-page.png"
# the sample city, a view a little smaller than the layer
VIEW = (-73.4950, 45.5530, -73.4920, 45.5550)
RUN_S = 90

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (make system-deps)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless chromium at 1000 x 700, its console log kept."""
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1000,700",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _open(browser, url: str) -> None:
    """Load `url` and wait until the page has read the process description."""
    browser.get_log("browser")  # start each page with an empty log
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return window.edgePage && window.edgePage.ready"))


def _script_errors(browser) -> list[dict]:
    """Console entries that are JavaScript errors or policy violations (a failed HTTP
    request the page handles, such as a refusal's 400, is logged as 'network')."""
    return [entry for entry in browser.get_log("browser")
            if entry.get("source") in ("javascript", "security")
            or (entry.get("level") == "SEVERE" and entry.get("source") == "console-api")]


def _keep_screenshot(png: bytes) -> None:
    """The page as the README shows it: a 256-colour PNG (about 100 KB, not 400)."""
    from PIL import Image

    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    partial = FIGURE.with_suffix(".partial.png")
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(partial, optimize=True)
    partial.replace(FIGURE)


def _record_messages(browser) -> None:
    """Keep every text #message shows in window.seenMessages (progress is brief)."""
    browser.execute_script(
        "window.seenMessages = [];"
        "new MutationObserver(function () {"
        "  window.seenMessages.push(document.getElementById('message').textContent);"
        "}).observe(document.getElementById('message'), {childList: true,"
        " characterData: true, subtree: true});")


def _permalink(wps, layer: str, method: str, bbox) -> str:
    return f"{wps.base}/?layer={layer}&method={method}&bbox={','.join(map(str, bbox))}"


def test_layer_list_fills_from_the_process_description(wps, browser):
    """#layer offers exactly the layers of the process description; #method its methods."""
    description = requests.get(f"{wps.base}/ogcapi/processes/get_raster_process",
                               timeout=10).json()
    _open(browser, f"{wps.base}/")
    layers = [o.get_attribute("value")
              for o in browser.find_elements(By.CSS_SELECTOR, "#layer option")]
    methods = [o.get_attribute("value")
               for o in browser.find_elements(By.CSS_SELECTOR, "#method option")]
    assert layers == description["inputs"]["wms"]["schema"]["enum"]
    assert "sample_city" in layers
    assert methods == description["inputs"]["method"]["schema"]["enum"]
    assert browser.find_element(By.ID, "map").is_displayed()
    assert not browser.find_elements(By.ID, "download-geotiff")
    assert _script_errors(browser) == []


def test_run_from_a_permalink_covers_the_view(wps, browser):
    """A run from a permalink: progress, then the overlay at the run's bbox and a GeoTIFF
    (EPSG:4326, float32) whose bounds are the view's, at least 256 px on the short side and
    with square pixels; the address bar follows the view; no script error."""
    _open(browser, _permalink(wps, "sample_city", "sobel_magnitude", VIEW))
    assert Select(browser.find_element(By.ID, "layer")).first_selected_option \
        .get_attribute("value") == "sample_city"
    assert Select(browser.find_element(By.ID, "method")).first_selected_option \
        .get_attribute("value") == "sobel_magnitude"
    view = browser.execute_script("return edgePage.viewBbox()")
    assert view[0] <= VIEW[0] and view[1] <= VIEW[1] and view[2] >= VIEW[2] \
        and view[3] >= VIEW[3]
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["layer"] == ["sample_city"] and query["method"] == ["sobel_magnitude"]
    assert [float(v) for v in query["bbox"][0].split(",")] == pytest.approx(view, abs=1e-6)

    size = browser.execute_script("var s = edgePage.map.getSize(); return [s.x, s.y]")
    assert min(size) >= 256  # the window is large enough: one request pixel per screen pixel
    _record_messages(browser)
    browser.find_element(By.ID, "run").click()
    link = WebDriverWait(browser, RUN_S).until(
        lambda b: b.find_elements(By.ID, "download-geotiff")
        or "Failed" in b.find_element(By.ID, "message").text
        or "Refused" in b.find_element(By.ID, "message").text)
    assert link, browser.find_element(By.ID, "message").text
    assert browser.find_element(By.ID, "message").text.startswith("Done")
    seen = browser.execute_script("return window.seenMessages")
    assert seen[0] == f"Submitting {size[0]} × {size[1]} px…"
    assert any(re.match(r"Running: (\d+ %|accepted|running)", text) for text in seen), seen
    run = browser.execute_script("return edgePage.lastRun")
    assert run["bbox"] == pytest.approx(view, abs=1e-6)
    assert [run["width"], run["height"]] == size

    href = link[0].get_attribute("href")
    assert href.startswith(f"{wps.base}/outputs/") and href.endswith(".tif")
    with rasterio.open(io.BytesIO(requests.get(href, timeout=30).content)) as dataset:
        assert dataset.crs.to_epsg() == 4326
        assert dataset.dtypes[0] == "float32"
        assert (dataset.width, dataset.height) == (run["width"], run["height"])
        assert tuple(dataset.bounds) == pytest.approx(tuple(view), abs=1e-6)
        assert dataset.res[0] == pytest.approx(dataset.res[1], rel=0.01)

    overlay = browser.find_element(By.CSS_SELECTOR, "img.edges")
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "var i = document.querySelector('img.edges'); return i.complete && i.naturalWidth"))
    assert overlay.get_attribute("src").startswith(f"{wps.base}/outputs/")
    assert overlay.get_attribute("src").endswith(".png")
    browser.find_element(By.ID, "overlay-toggle").click()
    assert not browser.find_elements(By.CSS_SELECTOR, "img.edges")
    browser.find_element(By.ID, "overlay-toggle").click()
    assert browser.find_elements(By.CSS_SELECTOR, "img.edges")
    tiles = WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "var t = Array.from(document.querySelectorAll('img.leaflet-tile'));"
        "return t.length && t.every(function (i) { return i.complete && i.naturalWidth; })"
        " && t.map(function (i) { return i.src; })"))
    assert all(src.startswith(f"{wps.base}/wms/sample?") for src in tiles)
    opacity = browser.find_element(By.ID, "overlay-opacity")
    browser.execute_script("arguments[0].value = '0.3';"
                           "arguments[0].dispatchEvent(new Event('input'))", opacity)
    assert browser.find_element(By.CSS_SELECTOR, "img.edges").value_of_css_property(
        "opacity") == "0.3"
    _keep_screenshot(browser.get_screenshot_as_png())
    assert _script_errors(browser) == []


def test_unknown_layer_in_a_permalink_is_said(wps, browser):
    """A permalink naming a layer the service does not offer: #message says so and no
    other layer is chosen in its place (an unknown method is said too)."""
    _open(browser, _permalink(wps, "no_such_layer", "no_such_method", VIEW))
    message = browser.find_element(By.ID, "message").text
    assert "no_such_layer" in message and "not offered" in message
    assert "no_such_method" in message and "sobel_x" in message  # the default, said
    assert Select(browser.find_element(By.ID, "layer")).all_selected_options == []
    assert "layer=no_such_layer" in browser.current_url
    assert _script_errors(browser) == []


def test_a_refusal_shows_the_services_message(wps, browser):
    """A run over an area outside the layer's extent: the service's refusal is shown as
    plain text, no GeoTIFF link appears, and the browser logs no script error."""
    far = (10.0, 10.0, 10.002, 10.0015)
    _open(browser, _permalink(wps, "sample_city", "sobel_x", far))
    view = browser.execute_script("return edgePage.viewBbox()")
    refusal = requests.post(
        f"{wps.base}/ogcapi/processes/get_raster_process/execution",
        json={"inputs": {"wms": "sample_city", "bbox": {"bbox": view}, "width": 256,
                         "height": 256}}, timeout=30).json()
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, RUN_S).until(
        lambda b: b.find_element(By.ID, "message").text.startswith(("Refused", "Failed")))
    message = browser.find_element(By.ID, "message")
    assert message.text.startswith("Refused: ")
    assert refusal["detail"].split(":")[0] in message.text
    assert message.find_elements(By.XPATH, "./*") == []  # text only, no markup
    assert "Traceback" not in message.text
    assert not browser.find_elements(By.ID, "download-geotiff")
    assert _script_errors(browser) == []


def test_small_view_is_requested_at_256_px_on_its_short_side(wps, browser):
    """A map 500 x 200 px on screen is requested at 640 x 256: the short side grown to 256,
    the aspect (square pixels) kept; the area is still the view (Leaflet follows the
    element's new size)."""
    _open(browser, _permalink(wps, "sample_city", "sobel_x", VIEW))
    browser.execute_script("var m = document.getElementById('map');"
                           "m.style.flex = 'none'; m.style.minHeight = '0';"
                           "m.style.height = '200px'; m.style.width = '500px';")
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "var s = edgePage.map.getSize(); return s.x === 500 && s.y === 200"))
    size = [500, 200]
    area = browser.execute_script("return edgePage.area()")
    assert area["height"] == 256
    assert area["width"] == round(size[0] * 256 / size[1])
    assert area["bbox"] == pytest.approx(
        browser.execute_script("return edgePage.viewBbox()"), abs=1e-6)


def test_drawn_box_is_the_area_and_the_address_follows_the_view(wps, browser):
    """Dragging with 'Draw a box' makes the box the area; panning updates the address."""
    from selenium.webdriver.common.action_chains import ActionChains

    _open(browser, _permalink(wps, "sample_city", "sobel_x", VIEW))
    before = parse_qs(urlsplit(browser.current_url).query)["bbox"][0]
    browser.find_element(By.ID, "draw").click()
    map_element = browser.find_element(By.ID, "map")
    ActionChains(browser).move_to_element_with_offset(map_element, -100, -60).click_and_hold() \
        .move_by_offset(150, 80).move_by_offset(50, 40).release().perform()
    area = browser.execute_script("return edgePage.area()")
    view = browser.execute_script("return edgePage.viewBbox()")
    assert view[0] < area["bbox"][0] < area["bbox"][2] < view[2]
    assert view[1] < area["bbox"][1] < area["bbox"][3] < view[3]
    assert min(area["width"], area["height"]) == 256  # a 200 x 120 px box, grown
    assert browser.find_element(By.ID, "clear-box").is_displayed()
    browser.find_element(By.ID, "clear-box").click()
    assert browser.execute_script("return edgePage.area()")["bbox"] == pytest.approx(view)
    browser.execute_script("edgePage.map.panBy([120, 0], {animate: false})")
    WebDriverWait(browser, 10).until(
        lambda b: parse_qs(urlsplit(b.current_url).query)["bbox"][0] != before)
    moved = [float(v) for v in parse_qs(urlsplit(browser.current_url).query)["bbox"][0]
             .split(",")]
    assert moved == pytest.approx(browser.execute_script("return edgePage.viewBbox()"),
                                  abs=1e-6)
    assert moved[0] > view[0]
    Select(browser.find_element(By.ID, "method")).select_by_value("prewitt_y")
    assert parse_qs(urlsplit(browser.current_url).query)["method"] == ["prewitt_y"]
    assert _script_errors(browser) == []


def test_a_failed_job_shows_the_services_message(faulty_wps, fault_proxy, browser):
    """A job whose WMS answers HTTP 500 ends failed: #message shows the job's own reason as
    text (no address, no traceback), and no GeoTIFF link appears."""
    _open(browser, _permalink(faulty_wps, "sample_city", "sobel_x", VIEW))
    fault_proxy.mode = "http500"
    try:
        browser.find_element(By.ID, "run").click()
        WebDriverWait(browser, RUN_S).until(
            lambda b: b.find_element(By.ID, "message").text.startswith(
                ("Refused", "Failed", "Done")))
    finally:
        fault_proxy.mode = "pass"
    text = browser.find_element(By.ID, "message").text
    assert text.startswith("Failed: ") and "HTTP status 500" in text, text
    assert "127.0.0.1" not in text and "Traceback" not in text
    assert not browser.find_elements(By.ID, "download-geotiff")
    assert _script_errors(browser) == []


def test_the_page_works_behind_a_reverse_proxy_prefix(proxied_wps, browser):
    """Under a proxy's /geo/ prefix the page's files, base map, jobs and links all go
    through the proxy (the page uses relative URLs; the service's links follow
    X-Forwarded-*)."""
    _, proxy = proxied_wps
    public = f"http://127.0.0.1:{proxy.port}/geo"
    _open(browser, f"{public}/?layer=sample_city&method=sobel_y&bbox="
                   f"{','.join(map(str, VIEW))}")
    browser.find_element(By.ID, "run").click()
    link = WebDriverWait(browser, RUN_S).until(
        lambda b: b.find_elements(By.ID, "download-geotiff")
        or b.find_element(By.ID, "message").text.startswith(("Failed", "Refused")))
    assert link, browser.find_element(By.ID, "message").text
    assert link[0].get_attribute("href").startswith(f"{public}/outputs/")
    assert browser.find_element(By.CSS_SELECTOR, "img.edges").get_attribute("src") \
        .startswith(f"{public}/outputs/")
    tiles = browser.execute_script(
        "return Array.from(document.querySelectorAll('img.leaflet-tile'))"
        ".map(function (i) { return i.src; })")
    assert tiles and all(src.startswith(f"{public}/wms/sample?") for src in tiles)
    assert browser.current_url.startswith(f"{public}/?")
    assert _script_errors(browser) == []


def test_a_run_through_the_nginx_front_on_one_worker(front_wps, browser):
    """Behind the nginx front of `make run` and the container, with one sync worker that
    the base map's tiles share with the jobs: the page runs and its links are the front's."""
    _open(browser, _permalink(front_wps, "sample_city", "prewitt_magnitude", VIEW))
    browser.find_element(By.ID, "run").click()
    link = WebDriverWait(browser, RUN_S).until(
        lambda b: b.find_elements(By.ID, "download-geotiff")
        or b.find_element(By.ID, "message").text.startswith(("Failed", "Refused")))
    assert link, browser.find_element(By.ID, "message").text
    href = link[0].get_attribute("href")
    assert href.startswith(f"{front_wps.base}/outputs/") and href.endswith(".tif")
    assert requests.get(href, timeout=30).content[:4] in (b"II*\x00", b"MM\x00*")
    tiles = WebDriverWait(browser, 30).until(lambda b: b.execute_script(
        "var t = Array.from(document.querySelectorAll('img.leaflet-tile'));"
        "return t.length && t.every(function (i) { return i.complete && i.naturalWidth; })"
        " && t.map(function (i) { return i.src; })"))
    assert all(src.startswith(f"{front_wps.base}/wms/sample?") for src in tiles)
    assert _script_errors(browser) == []
