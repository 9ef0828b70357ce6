"""The optimizer is pure: it imports the stdlib, numpy, scipy, pulp/highspy, pydantic and yaml only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ALLOWED_THIRD_PARTY = {"numpy", "scipy", "pulp", "highspy", "pydantic", "yaml"}
FORBIDDEN = {"asyncio", "ocpp", "websockets", "sqlmodel", "sqlalchemy", "csms_adapter", "benchmarks", "socket"}


def test_optimizer_imports_nothing_impure() -> None:
    root = Path(__file__).resolve().parents[2] / "optimizer"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            for name in names:
                ok = name == "optimizer" or name in sys.stdlib_module_names or name in ALLOWED_THIRD_PARTY
                if not ok or name in FORBIDDEN:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
