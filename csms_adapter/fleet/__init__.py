"""The fleet view: one read-only dashboard and JSON API across every depot that writes to a shared database."""

# Here rather than in fleet.server so that the CLI can show it without importing the web stack.
DEFAULT_LISTEN = "127.0.0.1:8090"
