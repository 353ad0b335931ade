"""Our thin layer over pywps.Service: strict input parsing with OGC exceptions.

PyWPS 4.8.1 (pinned exactly in requirements.txt, since this relies on its internals)
silently ignores unknown and repeated inputs, turns a malformed number into a bare HTTP
500, and loses the axis order of a BoundingBox: its XML path swaps EPSG:4326 corners
through OWSLib while its key-value path keeps them as typed and drops the CRS. Each of
these is fixed here, before any job starts, so a refusal is always an ExceptionReport
with the right exceptionCode and a locator naming the input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

from lxml import etree
from owslib.crs import Crs
from pywps.exceptions import (
    InvalidParameterValue,
    MissingParameterValue,
    ServerBusy,
    VersionNegotiationFailed,
)
from pywps.response.status import WPS_STATUS

from wps_app.core.errors import Busy, InvalidInput, StorageFull
from wps_app.core.types import bbox_from_corners
from wps_app.jobs import ClientBusy, StorageExhausted
from wps_app.wps.exceptions import ServerBusyRetryLater, from_core
from wps_app.wps.pywps_compat import CompatService

CRS84_URN = "urn:ogc:def:crs:OGC:1.3:CRS84"
_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
# The WSGI environ key under which a process leaves the id of the job a request started
# (the app's request log line names it).
JOB_ID_ENVIRON_KEY = "wps_edge.job_id"
# ... and whether an Execute asked to run "sync" or "async" (for /metrics).
EXECUTE_MODE_ENVIRON_KEY = "wps_edge.execute_mode"
# Literal values as XML Schema writes them, ASCII only: Python's int() and float() would
# also take "１２", "١٢" or "1_0", and PyWPS reads any non-false text as boolean true.
_LEXICAL = {
    "integer": re.compile(r"[+-]?[0-9]+", re.ASCII),
    "float": re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII),
    # XML Schema's true/false/1/0; letter case is let go because Python clients (birdy,
    # OWSLib) send str(True) == "True"
    "boolean": re.compile(r"(?i:true|false)|1|0"),
}
_LEXICAL_HINT = {
    "integer": "an integer (a whole number in ASCII digits)",
    "float": "a float (a decimal number in ASCII digits, e.g. 45.5 or -7.3e1)",
    "boolean": "a boolean: true, false, 1 or 0",
}


def _range_hint(source) -> str:
    """' within MIN..MAX' from the input's advertised AllowedValues range, if any."""
    for allowed in getattr(source, "allowed_values", None) or []:
        if getattr(allowed, "allowed_type", None) == "range":
            return f" within {allowed.minval:g}..{allowed.maxval:g}"
    return ""


def _owslib_swapped(crs: str | None) -> bool:
    """Whether OWSLib's BoundingBox (used by PyWPS's XML parser) swapped the corners."""
    return bool(crs) and Crs(crs).axisorder == "yx"


def _parse_kvp_bbox(text: str) -> tuple[list[float], str | None]:
    """'a,b,c,d[,crs[,dimensions]]' as WPS 1.0.0 key-value encoding writes a bbox."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) < 4:
        raise InvalidInput("bbox needs four numbers: lower corner, upper corner[, crs]", "bbox")
    if not all(_LEXICAL["float"].fullmatch(p) for p in parts[:4]):
        raise InvalidInput("bbox corners must be decimal numbers in ASCII digits", "bbox")
    numbers = [float(p) for p in parts[:4]]
    return numbers, (parts[4] if len(parts) > 4 and parts[4] else None)


def normalise_bbox(raw: dict, locator: str) -> list[float]:
    """[west, south, east, north] from a raw PyWPS bbox input, whatever path parsed it."""
    try:
        data = raw.get("data")
        if isinstance(data, str):  # key-value pairs: corners as typed, CRS inside the text
            numbers, crs = _parse_kvp_bbox(data)
            crs = crs or raw.get("crs")
        else:  # XML: OWSLib already swapped corners for CRSs it knows to be lat,lon
            crs = raw.get("crs")
            numbers = [float(v) for v in data]
            if _owslib_swapped(crs):
                numbers = [numbers[1], numbers[0], numbers[3], numbers[2]]
        bbox = bbox_from_corners((numbers[0], numbers[1]), (numbers[2], numbers[3]), crs)
    except InvalidInput as exc:
        raise InvalidParameterValue(str(exc), locator) from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidParameterValue(f"{locator} must hold four numbers", locator) from exc
    return [bbox.west, bbox.south, bbox.east, bbox.north]


_KVP_OUTPUT_ATTRIBUTES = {
    "mimetype": "mimetype",
    "encoding": "encoding",
    "schema": "schema",
    "uom": "uom",
    "asreference": "asReference",
}


def parse_kvp_outputs(text: str) -> dict[str, dict]:
    """ResponseDocument / RawDataOutput key-value text ('id@mimeType=x@asReference=true;...')
    in the shape PyWPS's XML parser gives (PyWPS 4.8.1 mangles 'id@attr=value' in KVP)."""
    outputs: dict[str, dict] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        identifier, *attributes = item.split("@")
        if "=" in identifier:  # 'id=value' is the literal-output form; keep the id
            identifier = identifier.split("=", 1)[0]
        output = {identifier: "", "mimetype": None, "encoding": "", "schema": "", "uom": ""}
        for attribute in attributes:
            key, _, value = attribute.partition("=")
            name = _KVP_OUTPUT_ATTRIBUTES.get(key.strip().lower())
            if name is None:
                raise InvalidParameterValue(f"unknown output attribute {key[:40]}", identifier)
            output[name] = unquote(value)
        outputs[identifier] = output
    return outputs


def _refuse_unknown(kind: str, asked, declared, process_id: str) -> None:
    """InvalidParameterValue for the first name in `asked` the process does not declare."""
    known = sorted(item.identifier for item in declared)
    for name in asked:
        if name not in known:
            raise InvalidParameterValue(
                f"unknown {kind} {name!s:.60}; {process_id} has: {', '.join(known)}",
                str(name)[:60],
            )


def _requested_versions(http_request) -> tuple[str, list[str] | None, str | None]:
    """(operation, AcceptVersions or None, version or None) of a GET or POST request."""
    if http_request.method == "POST":
        root = etree.fromstring(http_request.get_data(), _PARSER)  # checked by the guard
        # wps:AcceptVersions in the WPS 1.0.0 schema; ows: as PyWPS reads it
        accepted = [(v.text or "").strip() for v in root.xpath(
            "*[local-name()='AcceptVersions']/*[local-name()='Version']")]
        return etree.QName(root).localname.lower(), accepted or None, root.get("version")
    args = {key.lower(): value for key, value in http_request.args.items()}
    accepted = args.get("acceptversions")
    return ((args.get("request") or "").lower(),
            [v.strip() for v in accepted.split(",")] if accepted else None, args.get("version"))


def refuse_other_versions(http_request):
    """The exception for a request that asks for anything but WPS 1.0.0, else None.

    PyWPS also answers 2.0.0 (with templates it does not fill); this service advertises and
    serves 1.0.0 only (OGC API - Processes is its modern binding).
    """
    operation, accepted, version = _requested_versions(http_request)
    if operation == "getcapabilities":
        if accepted is not None and "1.0.0" not in accepted:
            return VersionNegotiationFailed(
                "this service speaks WPS 1.0.0 only; AcceptVersions must include 1.0.0",
                "AcceptVersions")
    elif version not in (None, "", "1.0.0"):
        return InvalidParameterValue(f"version {version[:20]!r} is not served; use 1.0.0",
                                     "version")
    return None


class EdgeService(CompatService):
    """pywps.Service that refuses unknown, repeated and malformed inputs up front."""

    def call(self, http_request):
        refusal = refuse_other_versions(http_request)
        if refusal is not None:
            return refusal
        response = super().call(http_request)
        # VersionNegotiationFailed is GetCapabilities's answer to AcceptVersions; a wrong
        # `version` on DescribeProcess or Execute is an invalid parameter value (OGC 05-007r7).
        if isinstance(response, VersionNegotiationFailed):
            operation = (http_request.args.get("request") or "").lower()
            if http_request.method == "POST" or operation not in ("", "getcapabilities"):
                return InvalidParameterValue(response.description, "version")
        return response

    def execute(self, identifier, wps_request, uuid):
        if wps_request.http_request is not None:
            asynchronous = wps_request.store_execute == "true" and wps_request.status == "true"
            wps_request.http_request.environ[EXECUTE_MODE_ENVIRON_KEY] = (
                "async" if asynchronous else "sync")
        if not identifier:
            raise MissingParameterValue("identifier (the process to run) is required",
                                        "identifier")
        process = self.processes.get(identifier)
        if process is None:
            raise InvalidParameterValue(f"unknown process {identifier!s:.80}", "Identifier")
        if wps_request.http_request is not None and wps_request.http_request.method == "GET":
            if isinstance(wps_request.output_ids, str):
                wps_request.outputs = parse_kvp_outputs(wps_request.output_ids)
        _refuse_unknown("output", wps_request.outputs, process.outputs, identifier)
        if wps_request.raw and len(wps_request.outputs) != 1:
            raise InvalidParameterValue("RawDataOutput names exactly one output", "RawDataOutput")
        for output in process.outputs:
            asked = wps_request.outputs.get(output.identifier, {}).get("mimetype")
            offered = [f.mime_type for f in getattr(output, "supported_formats", [])]
            if asked and offered and asked not in offered:
                raise InvalidParameterValue(
                    f"{output.identifier} is offered as {', '.join(offered)}, not {asked:.60}",
                    output.identifier,
                )
        _refuse_unknown("input", wps_request.inputs, process.inputs, identifier)
        # PyWPS fills in defaults next; the process needs to know what was actually sent
        # (a bbox without width or height keeps its aspect)
        wps_request.given_inputs = frozenset(wps_request.inputs)
        try:
            response = super().execute(identifier, wps_request, uuid)
        except ClientBusy as exc:
            raise from_core(Busy("this client has as many jobs running and queued as "
                                 "allowed; wait for one to end")) from exc
        except StorageExhausted as exc:
            raise from_core(StorageFull("the output storage is full; ask for the output by "
                                        "value, a smaller area, or try again later")) from exc
        except MissingParameterValue as exc:
            if exc.description != exc.locator:
                raise
            raise MissingParameterValue(f"input {exc.locator} is required", exc.locator) from exc
        except ServerBusy as exc:
            if isinstance(exc, ServerBusyRetryLater):
                raise
            raise ServerBusyRetryLater(
                "the job queue is full; please submit again later", "Identifier"
            ) from exc
        failure = getattr(getattr(response, "process", None), "failure", None)
        if (failure is not None and not getattr(response, "store_status_file", False)
                and response.status == WPS_STATUS.FAILED):
            # A sync request that failed: answered with its exception (the right code and
            # HTTP status, 5xx for an upstream failure), not a 200 ProcessFailed document.
            raise from_core(failure)
        return response

    @staticmethod
    def check_occurs(source, inputs: Sequence) -> None:
        if source.max_occurs is not None and len(inputs) > source.max_occurs:
            raise InvalidParameterValue(
                f"{source.identifier} given {len(inputs)} times; at most {source.max_occurs}",
                source.identifier,
            )

    def create_literal_inputs(self, source, inputs):
        self.check_occurs(source, inputs)
        for inpt in inputs:
            data = inpt.get("data")
            if data in (None, ""):
                raise MissingParameterValue(f"{source.identifier} is empty", source.identifier)
            lexical = _LEXICAL.get(source.data_type)
            if lexical is not None and not lexical.fullmatch(str(data).strip()):
                # PyWPS would turn "12.5" into 12, or "maybe" into true, without a word
                raise InvalidParameterValue(
                    f"{source.identifier} must be {_LEXICAL_HINT[source.data_type]}"
                    f"{_range_hint(source)}", source.identifier,
                )
        try:
            return super().create_literal_inputs(source, inputs)
        except (InvalidParameterValue, MissingParameterValue) as exc:
            if exc.locator:
                raise
            raise InvalidParameterValue(
                f"{source.identifier} must be a valid {source.data_type}", source.identifier
            ) from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidParameterValue(
                f"{source.identifier} must be a valid {source.data_type}", source.identifier
            ) from exc

    def create_bbox_inputs(self, source, inputs):
        self.check_occurs(source, inputs)
        normalised = [
            {"data": normalise_bbox(inpt, source.identifier), "crs": CRS84_URN, "dimensions": 2}
            for inpt in inputs
        ]
        return super().create_bbox_inputs(source, normalised)
