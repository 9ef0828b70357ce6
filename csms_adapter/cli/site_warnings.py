"""What a valid site file still gets wrong at run time, said before the controller starts rather than by every
charger's 401: chargers whose password is in an environment variable that is not set, or that have no password."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optimizer.domain import Site


def password_warnings(site: Site, env: Mapping[str, str]) -> list[str]:
    """One line per kind of problem, naming the chargers (and variables); empty when every charger can log in.
    Only security profiles 1 and 2 use passwords (0 admits anyone; 3 checks client certificates)."""
    if site.ocpp.security_profile not in (1, 2):
        return []
    unset: list[str] = []
    missing: list[str] = []
    for charger in site.chargers:
        auth = charger.auth
        if auth is None:
            missing.append(charger.id)
        elif auth.password_env is not None and not env.get(auth.password_env):
            unset.append(f"{charger.id} ({auth.password_env})")
    out: list[str] = []
    if unset:
        out.append(f"{len(unset)} of {len(site.chargers)} chargers have their password variable unset, so each would "
                   f"be refused (HTTP 401): {_names(unset)}. Set the variables in depotctl's environment, or give "
                   "auth: {password_sha256: …} (`depotctl password CHARGER-ID` makes one).")
    if missing:
        out.append(f"{len(missing)} charger(s) have no auth: and would be refused (HTTP 401): {_names(missing)}.")
    return out


def _names(items: list[str], shown: int = 6) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")
