/* The map page: runs get_raster_process through /ogcapi over the view (or a drawn box),
   draws the edges over the base map and links the GeoTIFF. Plain ES2017, no build step;
   Leaflet (Debian's libjs-leaflet) is the only library. Every text from the service is
   shown with textContent (never as markup). */
(function () {
  "use strict";

  var PROCESS = "ogcapi/processes/get_raster_process";
  var CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
  var MIN_SHORT_SIDE_PX = 256;
  var POLL_MS = 500;
  var MAX_MESSAGE = 300;

  if (!window.L) { // libjs-leaflet missing on the server: say so instead of failing
    document.getElementById("message").textContent =
      "The map library is not installed on the server (Debian package libjs-leaflet).";
    return;
  }
  var config = JSON.parse(document.getElementById("page-config").textContent);
  var layerSelect = document.getElementById("layer");
  var methodSelect = document.getElementById("method");
  var runButton = document.getElementById("run");
  var drawButton = document.getElementById("draw");
  var clearBoxButton = document.getElementById("clear-box");
  var overlayToggle = document.getElementById("overlay-toggle");
  var overlayOpacity = document.getElementById("overlay-opacity");
  var messageBox = document.getElementById("message");
  var resultBox = document.getElementById("result");

  var map = L.map("map", { crs: L.CRS.EPSG4326, maxZoom: 24, zoomControl: true });
  // The header's height changes (messages, the download link): keep Leaflet's size true,
  // or the view it reports (and runs) would not be the one on screen.
  if (window.ResizeObserver) {
    new ResizeObserver(function () { map.invalidateSize(false); }).observe(map.getContainer());
  }
  var baseLayer = null;
  var overlay = null;
  var box = null; // the drawn area (an L.Rectangle), or null: the view
  var limits = { width: 16384, height: 16384 };
  var ready = false;
  var page = { map: map, lastRun: null, ready: false };
  window.edgePage = page; // for tests and users' scripts

  function say(text, isError) {
    var value = String(text == null ? "" : text);
    if (value.length > MAX_MESSAGE) value = value.slice(0, MAX_MESSAGE - 1) + "…";
    messageBox.textContent = value;
    messageBox.className = isError ? "error" : "";
  }

  function round(value) {
    return Math.round(value * 1e7) / 1e7;
  }

  /* Bounds as [west, south, east, north] (CRS84 degrees). */
  function toBbox(bounds) {
    return [round(bounds.getWest()), round(bounds.getSouth()),
      round(bounds.getEast()), round(bounds.getNorth())];
  }

  function viewBbox() {
    return toBbox(map.getBounds());
  }
  page.viewBbox = viewBbox;

  function parseBbox(text) {
    if (!text) return null;
    var parts = text.split(",").map(Number);
    if (parts.length !== 4 || parts.some(function (v) { return !isFinite(v); })) return null;
    if (!(parts[0] < parts[2] && parts[1] < parts[3])) return null;
    if (parts[1] < -90 || parts[3] > 90) return null;
    return parts;
  }

  function syncAddress() {
    if (!ready) return;
    var params = new URLSearchParams();
    var initial = new URLSearchParams(window.location.search);
    params.set("layer", layerSelect.value || initial.get("layer") || "");
    params.set("method", methodSelect.value);
    params.set("bbox", viewBbox().join(","));
    window.history.replaceState(null, "", "?" + params.toString().replace(/%2C/g, ","));
  }

  function showBaseLayer() {
    if (baseLayer) {
      map.removeLayer(baseLayer);
      baseLayer = null;
    }
    if (!layerSelect.value) return;
    baseLayer = L.tileLayer.wms("wms/" + encodeURIComponent(config.source), {
      layers: layerSelect.value, format: "image/png", transparent: false,
      version: "1.3.0", maxZoom: 24,
      // 512 px tiles: a quarter of the GetMaps (each holds one of gunicorn's sync workers)
      tileSize: 512,
    }).addTo(map);
  }

  function fill(select, values, chosen) {
    select.textContent = "";
    values.forEach(function (value) {
      var option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      select.appendChild(option);
    });
    select.value = chosen;
    if (select.value !== chosen) select.selectedIndex = -1;
  }

  function initialView(bbox, layer) {
    var extent = bbox || (layer && config.extents[layer]);
    if (extent) {
      map.fitBounds([[extent[1], extent[0]], [extent[3], extent[2]]]);
    } else {
      map.fitWorld();
    }
  }

  /* The request size: the area's size on screen, grown so its short side has at least
     MIN_SHORT_SIDE_PX, shrunk to the service's caps; one factor for both sides keeps the
     pixels square (the map is in EPSG:4326: screen pixels are square in degrees). */
  function requestSize(widthPx, heightPx) {
    var scale = Math.max(1, MIN_SHORT_SIDE_PX / Math.min(widthPx, heightPx));
    scale = Math.min(scale, limits.width / widthPx, limits.height / heightPx);
    return {
      width: Math.max(1, Math.round(widthPx * scale)),
      height: Math.max(1, Math.round(heightPx * scale)),
    };
  }

  function area() {
    var bounds = box ? box.getBounds() : map.getBounds();
    var nw = map.latLngToContainerPoint(bounds.getNorthWest());
    var se = map.latLngToContainerPoint(bounds.getSouthEast());
    var size = requestSize(Math.max(1, se.x - nw.x), Math.max(1, se.y - nw.y));
    return { bbox: toBbox(bounds), width: size.width, height: size.height };
  }
  page.area = area;

  function problemText(body, status) {
    if (body && typeof body === "object") {
      var text = body.detail || body.title || body.message || body.description;
      if (text) return String(text);
    }
    return "the service answered " + status;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (error) {
      return null;
    }
  }

  function delay(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function link(links, suffix) {
    var found = (links || []).find(function (item) {
      return item.rel && item.rel.endsWith(suffix);
    });
    return found ? found.href : null;
  }

  function clearResult() {
    if (overlay) {
      map.removeLayer(overlay);
      overlay = null;
    }
    resultBox.textContent = "";
    overlayToggle.disabled = true;
    overlayOpacity.disabled = true;
  }

  function showResult(results, run) {
    var b = run.bbox;
    overlay = L.imageOverlay(results.image.href, [[b[1], b[0]], [b[3], b[2]]], {
      opacity: Number(overlayOpacity.value), interactive: false, className: "edges",
    });
    if (overlayToggle.checked) overlay.addTo(map);
    overlayToggle.disabled = false;
    overlayOpacity.disabled = false;
    var anchor = document.createElement("a");
    anchor.id = "download-geotiff";
    anchor.href = results.geotiff.href;
    anchor.setAttribute("download", "");
    anchor.textContent = "Download the GeoTIFF";
    resultBox.appendChild(anchor);
    page.overlay = overlay;
  }

  async function run() {
    if (!layerSelect.value) {
      say("Choose a layer first.", true);
      return;
    }
    var current = area();
    var run = { bbox: current.bbox, width: current.width, height: current.height };
    page.lastRun = run;
    clearResult();
    runButton.disabled = true;
    say("Submitting " + run.width + " × " + run.height + " px…");
    try {
      var response = await fetch(PROCESS + "/execution", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json",
          "Prefer": "respond-async" },
        body: JSON.stringify({
          inputs: {
            wms: layerSelect.value, method: methodSelect.value,
            bbox: { bbox: run.bbox, crs: CRS84 }, width: run.width, height: run.height,
          },
          response: "document",
          outputs: { image: { transmissionMode: "reference" },
            geotiff: { transmissionMode: "reference" } },
        }),
      });
      var body = await readJson(response);
      if (response.status !== 201) {
        say("Refused: " + problemText(body, response.status), true);
        return;
      }
      var jobUrl = response.headers.get("Location") || link(body.links, "self");
      run.job = jobUrl;
      var status = body;
      while (["accepted", "running"].indexOf(status.status) >= 0) {
        say("Running: " + (status.progress != null ? status.progress + " %" : status.status)
          + (status.message ? " — " + status.message : ""));
        await delay(POLL_MS);
        var poll = await fetch(jobUrl, { headers: { Accept: "application/json" } });
        var polled = await readJson(poll);
        if (!poll.ok) {
          say("Failed: " + problemText(polled, poll.status), true);
          return;
        }
        status = polled;
      }
      if (status.status !== "successful") {
        say("Failed: " + (status.message || "the job ended " + status.status), true);
        return;
      }
      var resultsUrl = link(status.links, "/results") || jobUrl + "/results";
      var resultsResponse = await fetch(resultsUrl, { headers: { Accept: "application/json" } });
      var results = await readJson(resultsResponse);
      if (!resultsResponse.ok || !results || !results.image || !results.geotiff) {
        say("Failed: " + problemText(results, resultsResponse.status), true);
        return;
      }
      showResult(results, run);
      say("Done: " + run.width + " × " + run.height + " px over " + run.bbox.join(", ") + ".");
    } catch (error) {
      say("The service could not be reached.", true);
    } finally {
      runButton.disabled = false;
    }
  }

  /* Drawing a box: press, drag, release on the map while drawing is on. */
  var drawing = false;
  var start = null;

  function setDrawing(on) {
    drawing = on;
    map.getContainer().classList.toggle("drawing", on);
    if (on) map.dragging.disable(); else map.dragging.enable();
  }

  drawButton.addEventListener("click", function () {
    setDrawing(true);
    say("Drag on the map to draw the area.");
  });
  clearBoxButton.addEventListener("click", function () {
    if (box) map.removeLayer(box);
    box = null;
    clearBoxButton.hidden = true;
    say("The area is the view.");
  });
  map.on("mousedown", function (event) {
    if (!drawing) return;
    start = event.latlng;
    if (box) map.removeLayer(box);
    box = L.rectangle([start, start], { weight: 2, fill: false, interactive: false })
      .addTo(map);
  });
  map.on("mousemove", function (event) {
    if (drawing && start) box.setBounds([start, event.latlng]);
  });
  map.on("mouseup", function (event) {
    if (!drawing || !start) return;
    box.setBounds([start, event.latlng]);
    start = null;
    setDrawing(false);
    clearBoxButton.hidden = false;
    say("The area is the box you drew.");
  });

  overlayToggle.addEventListener("change", function () {
    if (!overlay) return;
    if (overlayToggle.checked) overlay.addTo(map); else map.removeLayer(overlay);
  });
  overlayOpacity.addEventListener("input", function () {
    if (overlay) overlay.setOpacity(Number(overlayOpacity.value));
  });
  layerSelect.addEventListener("change", function () {
    say("");
    showBaseLayer();
    syncAddress();
  });
  methodSelect.addEventListener("change", syncAddress);
  map.on("moveend", syncAddress);
  runButton.addEventListener("click", run);

  async function start_() {
    var params = new URLSearchParams(window.location.search);
    var bbox = parseBbox(params.get("bbox"));
    var notes = [];
    if (params.get("bbox") && !bbox) notes.push("The bbox in the address is not w,s,e,n.");
    initialView(bbox, null);
    var response;
    var description;
    try {
      response = await fetch(PROCESS, { headers: { Accept: "application/json" } });
      description = await readJson(response);
    } catch (error) {
      say("The service could not be reached.", true);
      return;
    }
    if (!response.ok || !description || !description.inputs) {
      say("The process description is not available: "
        + problemText(description, response.status), true);
      return;
    }
    var inputs = description.inputs;
    var layers = (inputs.wms.schema && inputs.wms.schema.enum) || [];
    var methods = inputs.method.schema.enum || [];
    limits.width = inputs.width.schema.maximum || limits.width;
    limits.height = inputs.height.schema.maximum || limits.height;
    var wanted = params.get("layer");
    if (wanted && layers.indexOf(wanted) < 0) {
      notes.push("Layer “" + wanted + "” is not offered by this service; choose one.");
    }
    fill(layerSelect, layers, wanted || layers[0] || "");
    var method = params.get("method");
    if (method && methods.indexOf(method) < 0) {
      notes.push("Method “" + method + "” is not known; using "
        + inputs.method.schema.default + ".");
      method = null;
    }
    fill(methodSelect, methods, method || inputs.method.schema.default || methods[0]);
    if (!layers.length) notes.push("The WMS has not listed its layers yet; reload soon.");
    if (!bbox) initialView(null, layerSelect.value);
    showBaseLayer();
    ready = true;
    page.ready = true;
    if (wanted) syncAddress();
    say(notes.join(" "), notes.length > 0);
  }

  start_();
})();
