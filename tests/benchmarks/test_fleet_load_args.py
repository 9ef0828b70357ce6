"""fleet_load refuses a bad figure before it starts a database server or a controller, naming the option."""

from __future__ import annotations

import pytest

from benchmarks.live.fleet_load import main


@pytest.mark.parametrize(("args", "named"), [
    (["--stagger-s", "-1"], "--stagger-s"),
    (["--stagger-s", "nan"], "--stagger-s"),
    (["--tick-spacing-s", "-8"], "--tick-spacing-s"),
    (["--duration-s", "0"], "--duration-s"),
    (["--arrival-window-s", "inf"], "--arrival-window-s"),
    (["--controllers", "0"], "--controllers"),
    (["--chargers", "-5"], "--chargers"),
    (["--meter-interval-s", "0"], "--meter-interval-s"),
    (["--controllers", "ten"], "--controllers"),
])
def test_a_bad_figure_stops_the_run_at_once(args: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", *args])
    assert stop.value.code == 2
    assert named in capsys.readouterr().err
