"""The physics of a charging vehicle, shared by the simulated plant (benchmarks) and the emulated
chargers (csms_adapter): constant power up to the knee SoC then a linear taper, and the first-order
thermal model of ``optimizer.thermal``, integrated exactly over each sub-step.

Within one step the taper is integrated with small sub-steps, so the plant is *not* graded on the LP's
own step-start linearisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from optimizer.site_model import ThermalModel
from optimizer.thermal import step_temp_c


@dataclass(frozen=True, slots=True)
class BatteryState:
    soc: float
    temp_c: float
    energy_kwh: float = 0.0  # delivered into the battery so far (after charger efficiency)


@dataclass(frozen=True, slots=True)
class Battery:
    capacity_kwh: float
    max_power_kw: float
    knee_soc: float = 0.8
    thermal: ThermalModel = field(default_factory=ThermalModel.none)
    efficiency: float = 1.0

    def acceptance_kw(self, soc: float) -> float:
        """The most grid-side power the vehicle draws at ``soc``."""
        if soc >= 1.0:
            return 0.0
        if self.knee_soc >= 1.0 or soc <= self.knee_soc:
            return self.max_power_kw
        return self.max_power_kw * max(0.0, (1.0 - soc) / (1.0 - self.knee_soc))

    def charge(
        self,
        state: BatteryState,
        limit_kw: float,
        duration_h: float,
        ambient_c: float,
        target_soc: float = 1.0,
        substeps: int = 12,
    ) -> tuple[BatteryState, float]:
        """Charge for ``duration_h`` at no more than ``limit_kw``; stop at ``target_soc``.
        Returns the new state and the grid-side energy drawn (kWh)."""
        soc, temp, stored = state.soc, state.temp_c, state.energy_kwh
        drawn = 0.0
        dt = duration_h / max(substeps, 1)
        for _ in range(max(substeps, 1)):
            power = max(0.0, min(limit_kw, self.acceptance_kw(soc)))
            room_kwh = max(0.0, (target_soc - soc) * self.capacity_kwh)
            into = min(power * dt * self.efficiency, room_kwh)
            power = into / (dt * self.efficiency) if dt > 0 else 0.0
            soc = min(1.0, soc + into / self.capacity_kwh)
            stored += into
            drawn += power * dt
            temp = step_temp_c(self.thermal, temp, power, dt, ambient_c)
        return replace(state, soc=soc, temp_c=temp, energy_kwh=stored), drawn
