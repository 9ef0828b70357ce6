"""``depotctl password CHARGER_ID`` and ``depotctl certs init|server|client`` (registered by csms_adapter.cli.main).

``password`` prints a new random password once together with the ``password_sha256`` line for the site file,
and stores nothing. The password is 40 lower-case hex digits (160 random bits): valid as an OCPP 1.6
``AuthorizationKey`` (16-20 bytes as up to 40 hex digits, whitepaper A00.FR.205) and as a 2.0.1
``BasicAuthPassword`` (16-40 characters), so one form fits every charger.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from csms_adapter.protocol.identity import IDENTITY

out = Console(highlight=False, soft_wrap=True)  # a wrapped hash cannot be pasted
err = Console(stderr=True, highlight=False)
# Module level: typer resolves the (string) annotations of the commands in this module's namespace.
_T = TypeVar("_T")
DirOption = Annotated[Path, typer.Option("--dir", help="directory of the CA and the certificates")]


def new_password() -> tuple[str, str]:
    """(password, its sha256 hex) for a charger."""
    password = secrets.token_hex(20)
    return password, hashlib.sha256(password.encode()).hexdigest()


def register(app: typer.Typer) -> None:
    @app.command("password")
    def password(charger_id: Annotated[str, typer.Argument(help="charger identity, as in the site file")]) -> None:
        """Create a charger password: printed once here, only its hash goes in the site file."""
        if not IDENTITY.match(charger_id):
            err.print(f"'{charger_id}' is not a valid OCPP identity (1-48 of A-Z a-z 0-9 * - _ = + | @ .)")
            raise typer.Exit(2)
        secret, digest = new_password()
        out.print(f"password for {charger_id} (shown once; set it on the charger as 1.6 AuthorizationKey or "
                  f"2.0.1 SecurityCtrlr.BasicAuthPassword):")
        out.print(f"  {secret}")
        out.print("site file, under this charger:")
        out.print(f"  auth: {{password_sha256: {digest}}}")

    certs_app = typer.Typer(no_args_is_help=True, help="local CA and certificates for security profiles 2 and 3")
    app.add_typer(certs_app, name="certs")

    @certs_app.command("init")
    def init(organization: Annotated[str, typer.Option("--org", help="operator name (certificate O)")],
             directory: DirOption = Path("pki")) -> None:
        """Create a local certificate authority (ca.pem, ca.key)."""
        try:
            from csms_adapter.protocol import certs  # cryptography: only when the command runs

            issued = certs.init_ca(directory, organization)
        except FileExistsError as exc:
            err.print(str(exc))
            raise typer.Exit(1) from None
        out.print(f"CA: {issued.cert_file} (site file: ocpp.tls.ca_file); key {issued.key_file} (keep it offline)")

    @certs_app.command("server")
    def server(hosts: Annotated[list[str], typer.Argument(help="host names / IP addresses chargers connect to")],
               directory: DirOption = Path("pki")) -> None:
        """Issue the controller's two TLS certificates: ECDSA (server.pem/.key) and RSA (server-rsa.pem/.key)."""
        from csms_adapter.protocol import certs

        issued = _or_exit(lambda: certs.issue_server(directory, hosts))
        out.print(f"ECDSA server certificate: {issued.ecdsa.cert_file} (ocpp.tls.cert_file), key: "
                  f"{issued.ecdsa.key_file} (ocpp.tls.key_file)")
        out.print(f"RSA server certificate: {issued.rsa.cert_file} (ocpp.tls.rsa_cert_file), key: "
                  f"{issued.rsa.key_file} (ocpp.tls.rsa_key_file)")
        out.print("both are needed for the cipher suites OCPP requires (docs/ocpp-conformance.md)")

    @certs_app.command("client")
    def client(charger_id: Annotated[str, typer.Argument(help="charger identity (becomes the certificate CN)")],
               directory: DirOption = Path("pki")) -> None:
        """Issue a charger's client certificate for security profile 3."""
        if not IDENTITY.match(charger_id):
            err.print(f"'{charger_id}' is not a valid OCPP identity")
            raise typer.Exit(2)
        from csms_adapter.protocol import certs

        issued = _or_exit(lambda: certs.issue_client(directory, charger_id))
        out.print(f"charger certificate: {issued.cert_file}, key: {issued.key_file} (install both on the charger)")


def _or_exit(make: Callable[[], _T]) -> _T:
    try:
        return make()
    except FileNotFoundError as exc:
        err.print(f"{exc.filename}: not found; run `depotctl certs init` first")
        raise typer.Exit(1) from None
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
