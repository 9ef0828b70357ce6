"""Which charger identities depotctl accepts: identifierString of OCPP 2.0.1 (Part 4 §3.1.1) without ':' (the Basic-auth
separator), at most 48 characters. Its own module so that the CLI can check an identity without the OCPP server."""

from __future__ import annotations

import re

IDENTITY = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")
