"""Generated Basic-auth passwords for emulated chargers (``depotctl run --simulate``, tests, live benchmarks)."""

from __future__ import annotations

import dataclasses
import secrets

from optimizer.domain import ChargerAuth, Site

SIM_ENV_PREFIX = "DEPOTCTL_SIM_PASSWORD_"


def simulated_site(site: Site, n: int) -> tuple[Site, dict[str, str], dict[str, str]]:
    """The site with its first ``n`` chargers authenticated by generated passwords: (site, env, passwords)."""
    if n > len(site.chargers):
        raise ValueError(f"the site has {len(site.chargers)} chargers; cannot simulate {n}")
    env: dict[str, str] = {}
    passwords: dict[str, str] = {}
    chargers = []
    for index, charger in enumerate(site.chargers):
        if index < n:
            var = f"{SIM_ENV_PREFIX}{index}"
            passwords[charger.id] = env[var] = secrets.token_urlsafe(18)
            charger = dataclasses.replace(charger, auth=ChargerAuth(password_env=var))
        chargers.append(charger)
    return dataclasses.replace(site, chargers=tuple(chargers)), env, passwords
