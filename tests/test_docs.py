"""The documentation a user gets with the repository: every page the code or the docs point at exists, and the
code cites no design note a user who clones the project does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("optimizer", "csms_adapter", "benchmarks")
# Pages other helpers write in parallel; the index links them already.
ELSEWHERE = {"operations-restart.md", "ocpp-conformance.md", "monitoring.md", "alerts.md", "benchmarks-robust.md",
             "battery.md", "safety-phases.md"}


def sources() -> list[Path]:
    return [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]


def test_the_code_cites_only_pages_that_exist() -> None:
    cited: dict[str, Path] = {}
    for path in sources():
        for page in re.findall(r"docs/([a-z0-9-]+\.md)", path.read_text(encoding="utf-8")):
            cited.setdefault(page, path)
    assert cited, "the code cites no docs/ page at all"
    missing = {page: str(path.relative_to(ROOT)) for page, path in cited.items()
               if not (ROOT / "docs" / page).is_file() and page not in ELSEWHERE}
    assert not missing, missing


@pytest.mark.parametrize("note", ["DESIGN.md", "ocpp-notes", "solver-notes", "contracts.md", "CONVENTIONS"])
def test_the_code_cites_no_design_note_a_user_does_not_have(note: str) -> None:
    citing = [str(p.relative_to(ROOT)) for p in sources() if note in p.read_text(encoding="utf-8")]
    assert citing == []


def test_every_link_between_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text(encoding="utf-8")):
            if target.startswith("http") or Path(target).name in ELSEWHERE:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []


def test_the_readme_is_an_entry_point_not_the_manual() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) < 8_000
    assert "make run" in readme and "make test" in readme and "docs/quickstart.md" in readme
