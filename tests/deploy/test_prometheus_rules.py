"""The Prometheus alert rules in deploy/prometheus/ are valid and behave as their unit tests say (promtool), and
every depotctl metric they use is one the controller exports (a renamed metric would silently never alert)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from csms_adapter.control.controller import Controller
from csms_adapter.http_api.metrics import Metrics
from optimizer.site_loader import parse_site

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "depotctl-rules.yml"
RULES_TEST = RULES_DIR / "depotctl-rules.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus; `make test` installs it with root)")

def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=RULES_DIR, check=False)


@needs_promtool
def test_rules_file_is_valid() -> None:
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_rules_fire_and_stay_quiet_as_their_unit_tests_say() -> None:
    result = _promtool("test", "rules", RULES_TEST.name)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """promtool really checks the expectations: the same tests against a copy whose charger alert waits longer
    than the test allows must fail."""
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("for: 10m", "for: 30m", 1))
    (tmp_path / RULES_TEST.name).write_text(RULES_TEST.read_text())
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "test", "rules", RULES_TEST.name], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "DepotctlChargerDown" in result.stdout + result.stderr


def exported_metric_names() -> set[str]:
    """Every sample name a controller's /metrics can carry, from the exposition's ``# TYPE`` lines (a labelled
    counter has no sample before its first increment, but its type line is there)."""
    site = parse_site("site: {name: t, grid: {import_limit_kw: 100}}\nchargers:\n  - {id: cp-1, max_current_a: 32}\n")
    text = Metrics(Controller(site, listen="127.0.0.1:0")).render().decode()
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        names.add(name)
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def test_rules_use_only_metrics_the_controller_exports() -> None:
    used = set(re.findall(r"\bdepotctl_[a-z_]+", "\n".join(
        line.split("expr:", 1)[1] for line in RULES.read_text().splitlines() if "expr:" in line)))
    exported = exported_metric_names()
    assert {"depotctl_charger_up", "depotctl_incidents_open", "depotctl_webhook_failures_total"} <= used
    assert used <= exported, f"rules use metrics /metrics does not export: {sorted(used - exported)}"
