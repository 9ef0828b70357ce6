"""The check benchmark prints one row per size for a sound plan and refuses sizes it cannot use."""

from __future__ import annotations

import pytest

from benchmarks.check_bench import main


def test_prints_a_row_per_size_with_no_violation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sizes", "6,12", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["6", "12"]
    assert all(row.split("|")[5].strip() == "0" for row in rows)  # the LP's plan passes its check


@pytest.mark.parametrize("argv", [["--sizes", "abc"], ["--sizes", "0"], ["--sizes", ","], ["--repeats", "0"]])
def test_refuses_sizes_and_repeats_it_cannot_use(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "--sizes" in capsys.readouterr().err
