"""Reading one sample out of a Prometheus text exposition (what ``/metrics`` serves), for the tests."""

from __future__ import annotations

import re


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` whose labels include ``labels``; None when there is none."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None
