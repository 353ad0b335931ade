#!/usr/bin/env python3
"""Validate OGC API - Processes 1.0 JSON documents against the standard's own schemas, offline.

    validate_json.py SCHEMA FILE...      e.g. validate_json.py statusInfo.yaml status.json
    from validate_json import validate    validate(doc, "processList.yaml") -> list of errors

SCHEMA is a file name under ogcapi-processes-1.0/schemas/ (landingPage, confClasses, processList,
process, statusInfo, jobList, results, exception, execute, ...). The schemas are OpenAPI 3.0
flavoured JSON Schema: they are checked here with draft 4 semantics, as OpenAPI 3.0 defines them.
Needs jsonschema (with referencing) and PyYAML.
"""
import json
import pathlib
import sys

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"


# inputValueNoObject.yaml says oneOf [string, number, integer, boolean, array,
# binaryInputValue (a string), bbox]: every string matches both `string` and
# binaryInputValue, every integer both `number` and `integer`, so under oneOf no string or
# integer value (e.g. a base64 PNG in a results document) could ever be valid. Read as the
# standard's text means it (any of these forms), i.e. anyOf; STRICT=True keeps the file as is
# (tests/unit/test_ogcapi_conformance.py shows the defect).
AMBIGUOUS_ONEOF = ("inputValueNoObject.yaml",)


def _registry(strict: bool = False) -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.yaml"):
        contents = yaml.safe_load(path.read_text())
        if not strict and path.name in AMBIGUOUS_ONEOF:
            contents = {"anyOf": contents["oneOf"]}
        resource = Resource.from_contents(contents, default_specification=DRAFT4)
        resources.append((path.name, resource))
    return Registry().with_resources(resources)


_REGISTRY = None


def validate(doc, schema: str, strict: bool = False) -> list[str]:
    """Errors of `doc` (parsed JSON) against schemas/`schema`; empty when valid."""
    global _REGISTRY
    if strict:
        registry = _registry(strict=True)
    else:
        if _REGISTRY is None:
            _REGISTRY = _registry()
        registry = _REGISTRY
    contents = registry.contents(schema)
    validator = Draft4Validator(contents, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bad = 0
    for name in sys.argv[2:]:
        errors = validate(json.loads(pathlib.Path(name).read_text()), sys.argv[1])
        print(f"{name}: {'valid' if not errors else 'INVALID'}")
        for e in errors:
            print("  ", e)
        bad += bool(errors)
    sys.exit(1 if bad else 0)
