"""The seeded day generator: the same seed gives the same files, every profile gives a scenario the benchmark
loads, and one directory for both sites and scenarios is refused (the files share the profile's name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generate import PROFILES, main
from benchmarks.scenario import load_scenario


def test_every_profile_gives_a_loadable_scenario_and_the_same_seed_the_same_files(tmp_path: Path) -> None:
    main(["--all", "--seed", "7", "--out", str(tmp_path / "a" / "scenarios"), "--sites", str(tmp_path / "a" / "sites")])
    main(["--all", "--seed", "7", "--out", str(tmp_path / "b" / "scenarios"), "--sites", str(tmp_path / "b" / "sites")])
    for name in PROFILES:
        first = tmp_path / "a" / "scenarios" / f"{name}.yaml"
        scenario = load_scenario(first)
        assert scenario.sessions, name
        assert first.read_text() == (tmp_path / "b" / "scenarios" / f"{name}.yaml").read_text()


def test_one_directory_for_sites_and_scenarios_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--profile", "congested-day", "--out", str(tmp_path), "--sites", str(tmp_path)])
    assert stop.value.code == 2
    assert "same directory" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
