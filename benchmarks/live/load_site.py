"""The load benchmarks' depot: the solver benchmark's synthetic site made live (Basic auth, a real control interval,
the given metering, a store), on a free loopback port. Written by ``load_bench`` and ``boot_cost``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from benchmarks.synthetic_site import synthetic_site_mapping

PASSWORD_ENV = "DEPOTCTL_BENCH_PASSWORD"


def bench_site_mapping(chargers: int, *, port: int, meter_interval_s: int, horizon_h: float, db: Path,
                       seed: int = 0, db_url: str | None = None, site_name: str | None = None) -> dict[str, Any]:
    """The synthetic depot of the solver benchmark, made live: Basic auth (one password from the environment
    for every charger), a real control interval, the given metering and a store in ``db``."""
    mapping: dict[str, Any] = synthetic_site_mapping(chargers, seed, step_min=15.0, horizon_h=horizon_h,
                                                     uniform_steps=False)
    for charger in mapping["chargers"]:
        charger["auth"] = {"password_env": PASSWORD_ENV}
    mapping["control"] = {**mapping["control"], "interval_s": 60, "strategy": "lp"}
    mapping["ocpp"] = {"listen": f"127.0.0.1:{port}", "security_profile": 1, "meter_interval_s": meter_interval_s,
                       "call_timeout_s": 10, "accept_unknown": False}
    mapping["storage"] = {"url": db_url or f"sqlite:///{db}"}
    if site_name is not None:
        mapping["site"]["name"] = site_name
    return mapping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
