"""tests/ATTACKS.md names a test for every attack: each must exist, each bracketed case must
be in its file, so the table cannot point at tests that are gone."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
TABLE = REPO / "tests" / "ATTACKS.md"
REFERENCE = re.compile(r"\|\s*(tests/[\w/]+\.py)::(\w+)(?:\[([^\]]+)\])?\s*\|\s*$")


def references() -> list[tuple[str, str, str | None]]:
    return [m.groups() for line in TABLE.read_text().splitlines()
            if (m := REFERENCE.search(line))]


def test_every_attack_row_names_a_test():
    rows = [line for line in TABLE.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| attack") and "---" not in line]
    assert len(rows) == len(references()) >= 40


def test_every_named_test_exists():
    missing = []
    for path, name, case in references():
        source = (REPO / path).read_text()
        names = {node.name for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.FunctionDef)}
        if name not in names:
            missing.append(f"{path}::{name}")
        elif case and f'("{case}"' not in source:
            missing.append(f"{path}::{name}[{case}]")
    assert missing == []
