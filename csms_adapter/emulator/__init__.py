"""Emulated OCPP 1.6J and 2.0.1 charging stations with vehicles that obey their charging profiles.

    fleet = await start_fleet(site, "ws://127.0.0.1:9000", speed=60, seed=1)   # csms_adapter.emulator.fleet
    fleet.connectors()   # list[ConnectorView]: soc (0..1), power_kw, limit_kw, limit_a, temp_c, energy_kwh, ...
    fleet.site_power_kw()
    await fleet.stop()

Single stations: ``EmulatedCharger(charger, url, EmulatorClock(speed), version="1.6"|"2.0.1",
quirks=Quirks(...), password=...)`` with ``start()``, ``plug_in(connector_id, EVSpec)``,
``unplug(connector_id)``, ``drop_connection()``, ``stop()``. Time runs on ``EmulatorClock``.
Several processes: ``python -m csms_adapter.emulator --site SITE.yaml --url ws://... --offset K --count N``.
"""

from csms_adapter.emulator.clock import EmulatorClock
from csms_adapter.emulator.fleet import Fleet, start_fleet
from csms_adapter.emulator.plant import EVSpec, Quirks
from csms_adapter.emulator.station import ConnectorView, EmulatedCharger

__all__ = ["ConnectorView", "EVSpec", "EmulatedCharger", "EmulatorClock", "Fleet", "Quirks", "start_fleet"]
