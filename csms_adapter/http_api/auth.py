"""Who may do what over HTTP.

Writes (grid cap, session overrides, vehicle data) need HTTP Basic auth as user ``operator`` with the operator
password, configured like a charger's (docs/security.md, never a plain password in a file):

- ``DEPOTCTL_OPERATOR_PASSWORD``: the password itself, from the environment (a secrets manager, systemd
  ``LoadCredential``, ...), or
- ``DEPOTCTL_OPERATOR_PASSWORD_SHA256``: the hex SHA-256 of the password, for a unit file or an env file that
  others can read.

With neither set, writes are refused (403) and the dashboard is read-only. Reads are open to loopback clients
(the dashboard on the controller's own machine); from anywhere else they need the same credentials, so a listen
address opened to the depot LAN does not hand out the fleet's state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

OPERATOR_USER = "operator"
PASSWORD_ENV = "DEPOTCTL_OPERATOR_PASSWORD"
PASSWORD_SHA256_ENV = "DEPOTCTL_OPERATOR_PASSWORD_SHA256"


@dataclass(frozen=True, slots=True)
class OperatorAuth:
    """The SHA-256 of the operator password, or None when writes are disabled."""

    password_sha256: bytes | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorAuth:
        """Raises ValueError when ``DEPOTCTL_OPERATOR_PASSWORD_SHA256`` is not 64 hex digits."""
        plain = env.get(PASSWORD_ENV)
        if plain:
            return cls(hashlib.sha256(plain.encode()).digest())
        hashed = env.get(PASSWORD_SHA256_ENV)
        if hashed:
            try:
                digest = bytes.fromhex(hashed.strip())
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise ValueError(f"{PASSWORD_SHA256_ENV} must be 64 hex digits (sha256 of the password)")
            return cls(digest)
        return cls(None)

    @classmethod
    def with_password(cls, password: str) -> OperatorAuth:
        return cls(hashlib.sha256(password.encode()).digest())

    @property
    def writes_enabled(self) -> bool:
        return self.password_sha256 is not None

    def check(self, authorization: str | None) -> bool:
        """True when the ``Authorization`` header carries the operator's credentials (constant-time compare)."""
        if self.password_sha256 is None or not authorization:
            return False
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and self.check_credentials(user, password)

    def check_credentials(self, user: str, password: str) -> bool:
        if self.password_sha256 is None:
            return False
        digest = hashlib.sha256(password.encode()).digest()
        # Both comparisons always run, so the timing does not tell whether the user name was right.
        user_ok = hmac.compare_digest(user.encode(), OPERATOR_USER.encode())
        return hmac.compare_digest(digest, self.password_sha256) & user_ok


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
