"""What a new user hit on a first try, each fixed: several files for `check`, unset password variables, the
HiGHS banner, a taken HTTP port without its address, `make lint`/`make bench` doing nothing, help citing files a
user does not have."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from csms_adapter.cli.site_warnings import password_warnings
from csms_adapter.http_api.server import bind_listen_socket
from optimizer.site_loader import load_site

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "site_configs" / "demo-van-depot.yaml"


def depotctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csms_adapter.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False, env=env)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_PASSWORD")}


def test_check_takes_several_files_and_fails_if_any_has_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text(encoding="utf-8").replace("voltage_v: 230", "voltage_v: lots"), encoding="utf-8")
    good = depotctl("check", *(str(p) for p in sorted((ROOT / "site_configs").glob("*.yaml"))), env=clean_env())
    assert good.returncode == 0, good.stderr
    assert good.stdout.count("ok: ") == 3
    mixed = depotctl("check", str(DEMO), str(bad), env=clean_env())
    assert mixed.returncode == 2
    assert f"ok: {DEMO}" in mixed.stdout.replace("\n", "")
    assert "site.voltage_v" in mixed.stderr and "1 of 2 files have problems" in mixed.stderr


def test_check_warns_when_chargers_could_not_log_in_and_not_when_they_could() -> None:
    unset = depotctl("check", str(DEMO), env=clean_env())
    assert unset.returncode == 0
    assert "password variable unset" in unset.stderr and "DEPOT_CP01_PASSWORD" in unset.stderr.replace("\n", "")
    site = load_site(DEMO)
    env = {c.auth.password_env: "s3cret" for c in site.chargers if c.auth is not None and c.auth.password_env}
    assert password_warnings(site, env) == []
    one_missing = dict(env)
    one_missing.pop("DEPOT_CP01_PASSWORD")
    (warning,) = password_warnings(site, one_missing)
    assert warning.startswith("1 of 14 chargers") and "cp-01 (DEPOT_CP01_PASSWORD)" in warning


def test_no_command_prints_the_solver_banner() -> None:
    result = depotctl("plan", str(DEMO), "--snapshot", "site_configs/demo-snapshot.json", "--json")
    assert result.returncode == 0, result.stderr
    assert "HiGHS" not in result.stderr and "Copyright" not in result.stdout + result.stderr


def test_output_through_a_pipe_is_never_cut_short() -> None:
    result = depotctl("plan", str(DEMO), "--snapshot", "site_configs/demo-snapshot.json")
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert "cp-01" in result.stdout and "SoC@dep" in result.stdout


def test_a_taken_http_port_names_the_address_and_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{port} \(http\.listen"):
            bind_listen_socket("127.0.0.1", port)


def test_plan_help_points_at_a_page_that_exists() -> None:
    result = depotctl("plan", "--help")
    assert result.returncode == 0
    assert "contracts.md" not in result.stdout and "docs/json.md" in result.stdout
    assert (ROOT / "docs" / "json.md").is_file()


@pytest.mark.parametrize(("target", "command"), [("lint", "mypy optimizer csms_adapter benchmarks"),
                                                 ("bench", "depotctl bench benchmarks/scenarios/*.yaml")])
def test_make_lint_and_bench_do_something(target: str, command: str) -> None:
    result = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert command in result.stdout


def test_run_warns_before_it_starts_when_chargers_could_not_log_in(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(DEMO.read_text(encoding="utf-8").replace('listen: "127.0.0.1:9000"', 'listen: "127.0.0.1:0"'),
                    encoding="utf-8")
    result = depotctl("run", str(site), "--duration-s", "0.5", "--no-http", "--db", str(tmp_path / "depot.db"),
                      env=clean_env())
    assert result.returncode == 0, result.stderr
    assert "warning: 14 of 14 chargers have their password variable unset" in result.stderr.replace("\n", " ")
