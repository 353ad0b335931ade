"""An execute request (execute.yaml, 1.0) parsed into the task's plain values and the
outputs asked for; the files of a finished run mapped to those outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wps_app.core.types import BBox
from wps_app.ogcapi import description
from wps_app.ogcapi.problems import bad_input
from wps_app.task import INPUTS

Mode = Literal["value", "reference"]


@dataclass(frozen=True)
class OutputChoice:
    """One output asked for: its id, media type and transmission mode."""

    output_id: str
    media_type: str
    mode: Mode

    @property
    def is_geotiff(self) -> bool:
        return self.output_id == "geotiff" or self.media_type != description.PNG


@dataclass(frozen=True)
class ExecuteRequest:
    """Plain input values for EdgeTask.validate, the outputs, and the response form."""

    values: dict[str, Any]
    outputs: tuple[OutputChoice, ...]
    response: Literal["raw", "document"]

    def to_json(self) -> bytes:
        """Serialised for the job store (a queued job is started from it)."""
        values = dict(self.values)
        if isinstance(values.get("bbox"), BBox):
            values["bbox"] = list(values["bbox"].bounds)
        return json.dumps({"values": values, "response": self.response,
                           "outputs": [[o.output_id, o.media_type, o.mode]
                                       for o in self.outputs]}).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> ExecuteRequest:
        data = json.loads(payload.decode())
        values = data["values"]
        if values.get("bbox") is not None:
            values["bbox"] = BBox(*values["bbox"])
        return cls(values, tuple(OutputChoice(*o) for o in data["outputs"]), data["response"])


def _unwrap(name: str, value: Any) -> Any:
    """An input value given bare or qualified ({"value": ...}); references are refused."""
    if isinstance(value, list):
        if len(value) != 1:
            raise bad_input(name, f"{name} takes exactly one value")
        value = value[0]
    if isinstance(value, dict) and "href" in value:
        raise bad_input(name, f"{name} cannot be given by reference (href); give its value")
    if isinstance(value, dict) and "value" in value and name != "bbox":
        value = value["value"]
    return value


def _bbox(value: Any) -> BBox:
    if not isinstance(value, dict) or "bbox" not in value:
        raise bad_input("bbox", 'bbox must be {"bbox": [west, south, east, north], "crs": '
                                f'"{description.CRS84}"}}')
    crs = value.get("crs", description.CRS84)
    if crs != description.CRS84:
        raise bad_input("bbox", f"bbox crs must be {description.CRS84} (lon/lat)")
    corners = value["bbox"]
    if (not isinstance(corners, list) or len(corners) != 4
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                       for c in corners)):
        raise bad_input("bbox", "bbox must hold four numbers: west, south, east, north")
    return BBox(*(float(c) for c in corners))


def _typed(name: str, value: Any) -> Any:
    """JSON types checked against the description (the core checks ranges and names)."""
    if name == "bbox":
        return _bbox(value)
    if name in ("lat", "lon"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_input(name, f"{name} must be a number of degrees")
        return float(value)
    if name in ("width", "height"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_input(name, f"{name} must be a positive whole number of pixels")
        return value
    if name == "cog":
        if not isinstance(value, bool):
            raise bad_input(name, "cog must be true or false")
        return value
    if not isinstance(value, str):
        raise bad_input(name, f"{name} must be a string")
    return value


def _outputs(asked: Any) -> tuple[OutputChoice, ...]:
    if asked is None or asked == {}:
        # 1.0: no outputs asked for means every output, in its default transmission (value)
        return (OutputChoice("image", description.PNG, "value"),
                OutputChoice("geotiff", description.GEOTIFF, "value"))
    if not isinstance(asked, dict):
        raise bad_input("outputs", "outputs must be an object keyed by output id")
    chosen = []
    for output_id, spec in asked.items():
        if output_id not in description.OUTPUTS:
            raise bad_input("outputs", f"outputs: there is no output {output_id[:40]!r}; "
                                       f"choose among {', '.join(description.OUTPUTS)}")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise bad_input("outputs", f"outputs: {output_id} must be an object")
        mode = spec.get("transmissionMode", "value")
        if mode not in ("value", "reference"):
            raise bad_input("outputs", f"outputs: {output_id} transmissionMode must be value "
                                       "or reference")
        media = (spec.get("format") or {}).get("mediaType")
        allowed = description.IMAGE_TYPES if output_id == "image" else description.GEOTIFF_TYPES
        default = description.PNG if output_id == "image" else description.GEOTIFF
        if media is None:
            media = default
        elif media not in allowed:
            raise bad_input("outputs", f"outputs: {output_id} is offered as "
                                       f"{', '.join(allowed)}")
        if output_id == "geotiff" or media != description.PNG:
            media = description.GEOTIFF if media != description.TIFF else media
        chosen.append(OutputChoice(output_id, media, mode))
    return tuple(chosen)


def parse(body: bytes) -> ExecuteRequest:
    """The execute request in `body` (JSON); Problem 400 naming the input at fault."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        raise bad_input("body", "the request body must be a JSON execute request") from None
    if not isinstance(document, dict):
        raise bad_input("body", "the request body must be a JSON object")
    given = document.get("inputs") or {}
    if not isinstance(given, dict):
        raise bad_input("inputs", "inputs must be an object keyed by input id")
    values: dict[str, Any] = {}
    for name, value in given.items():
        if name not in INPUTS:
            raise bad_input(name, f"there is no input {name[:40]!r}; the inputs are "
                                  f"{', '.join(INPUTS)}")
        values[name] = _typed(name, _unwrap(name, value))
    response = document.get("response", "raw")
    if response not in ("raw", "document"):
        raise bad_input("response", "response must be raw or document")
    return ExecuteRequest(values, _outputs(document.get("outputs")), response)


def file_of(choice: OutputChoice, folder: Path, method: str) -> Path:
    """The file holding output `choice` in a run's folder (named by the writer)."""
    return folder / (f"{method}.tif" if choice.is_geotiff else f"{method}.png")
