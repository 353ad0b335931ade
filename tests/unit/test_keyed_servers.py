"""Every server the integration layer starts is keyed and recorded (tests/support/keyed.py):
no test module starts one through devtools.servers.start_wps directly."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_test_starts_an_unkeyed_server():
    offenders = []
    for path in TESTS.rglob("*.py"):
        if path.name == "keyed.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "devtools.servers":
                if any(alias.name == "start_wps" for alias in node.names):
                    offenders.append(str(path.relative_to(TESTS)))
            if isinstance(node, ast.Attribute) and node.attr == "start_wps":
                offenders.append(str(path.relative_to(TESTS)))
    assert offenders == []
