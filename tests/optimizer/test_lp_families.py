"""build_lp, written family by family (optimizer/lp_columns.py, optimizer/lp_rows.py): the layout is consistent and
each family holds the rows it claims."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.domain import ThermalModel
from optimizer.lp_columns import MARGIN_WEIGHT_SHARE, column_layout
from optimizer.lp_model import LinearProgram, build_lp
from optimizer.lp_rows import RowBuilder, add_site_rows
from optimizer.strategies.base import prepare_tick
from tests.optimizer.helpers import session, site_with, snapshot

THERMAL = ThermalModel(max_temp_c=40.0, heating_c_per_kwh=0.8, cooling_per_h=0.3)


def _lp(**objective: object) -> LinearProgram:
    control = {"step_min": 15, "horizon_h": 6}
    if objective:
        control["objective"] = objective  # type: ignore[assignment]
    site = site_with(control=control)
    snap = snapshot(
        session("cp-1", soc=0.1, hours=5.0, soc_resolution=0.01),  # a margin
        session("cp-3", soc=0.5, hours=4.0, battery_kwh=40.0, knee_soc=0.6),  # passes its knee: taper rows
        session("cp-4", soc=0.3, hours=3.0, battery_temp_c=38.0, thermal=THERMAL),  # can reach its ceiling
    )
    tick = prepare_tick(site, snap)
    return build_lp(tick.sessions, tick.horizon, tick.series, tick.limits, site.control.objective, 0.0, 0.0)


def test_families_come_in_a_fixed_order_and_cover_every_row() -> None:
    lp = _lp(peak=1.0)
    kinds = [g.kind for g in lp.groups]
    assert kinds[:2] == ["departure_energy", "site_import_limit"]
    assert kinds.index("soc_taper") < kinds.index("battery_temperature_state") < kinds.index("site_peak")
    assert kinds[-1] == "site_peak"
    firsts = [g.first for g in lp.groups]
    assert firsts == sorted(firsts) and firsts[0] == 0
    peak = lp.groups[-1]
    assert peak.first + lp.steps == lp.matrix.shape[0] == lp.row_lb.size == lp.row_ub.size
    assert lp.matrix.shape[1] == lp.columns == lp.col_lb.size == lp.col_ub.size


def test_departure_row_sums_power_unmet_and_margin_of_its_own_session_only() -> None:
    lp = _lp()
    n, steps = lp.sessions, lp.steps
    rows = lp.matrix[:n].toarray()
    for i in range(n):
        p_cols = np.flatnonzero(rows[i, : n * steps])
        assert p_cols.size and (p_cols // steps == i).all()
        assert rows[i, n * steps + i] == 1.0  # u[i]
    assert lp.row_lb[:n] == pytest.approx(lp.row_ub[:n])  # an equality
    margin_cols = np.flatnonzero(np.isclose(lp.cost, MARGIN_WEIGHT_SHARE * lp.cost[n * steps : n * steps + n].min()))
    assert margin_cols.size >= 1 and rows[0, margin_cols].sum() == 1.0  # cp-1 has a margin column


def test_thermal_columns_sit_after_unmet_and_carry_the_ceiling() -> None:
    lp = _lp()
    assert len(lp.theta_cols) == 1
    session_index, first, cols = lp.theta_cols[0]
    assert session_index == 2 and first >= 0
    assert cols[0] == lp.sessions * lp.steps + lp.sessions  # right after u
    assert np.isinf(lp.col_lb[cols]).all() and (lp.col_ub[cols] <= 40.0).all()


def test_no_peak_price_means_no_peak_column_or_rows() -> None:
    lp = _lp()
    assert lp.peak_col is None and "site_peak" not in {g.kind for g in lp.groups}


def test_a_negative_site_room_becomes_a_zero_row_bound() -> None:
    layout = column_layout(2, 3, [], 0, False, np.zeros(2))
    rows = RowBuilder()
    add_site_rows(rows, layout, np.array([10.0, -4.0, np.inf]))
    assert rows.next_row == 3
    assert list(rows.row_ub[0]) == [10.0, 0.0, np.inf]
    matrix = rows.matrix(layout.columns).toarray()
    assert (matrix[1, layout.p_index[:, 1]] == 1.0).all() and matrix[1].sum() == 2.0
