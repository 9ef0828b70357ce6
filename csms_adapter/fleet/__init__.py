"""The fleet view: one read-only dashboard and JSON API across every depot that writes to a shared database."""
