"""What every step records in the artifact it writes."""

from __future__ import annotations

from sivi_engine import artifacts
from sivi_engine.provenance import now, package_versions


def provenance_attrs() -> dict[str, str]:
    """Package versions (JSON) and the UTC creation time, as artifact attributes."""
    return {"versions": artifacts.json_attr(package_versions()), "created": now()}
