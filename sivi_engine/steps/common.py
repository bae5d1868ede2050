"""What every step records in the artifact it writes, and what it checks before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sivi_engine import artifacts
from sivi_engine.provenance import now, package_versions
from sivi_engine.settings import SettingsError


def provenance_attrs() -> dict[str, str]:
    """Package versions (JSON) and the UTC creation time, as artifact attributes."""
    return {"versions": artifacts.json_attr(package_versions()), "created": now()}


def check_output(out: Path) -> None:
    """Refuse, before any work, an output the step could not write: its folder must exist or
    be creatable, and a file must be creatable in it."""
    folder = Path(out).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        raise SettingsError(
            f"--out {out}: cannot write into {folder} ({err.strerror or err}); nothing was run"
        ) from err


def physical_memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(setting: str, count: int, dim: int, checkpoint_copies: int = 0) -> None:
    """Refuse a run whose ``count`` float64 draws of dimension ``dim`` (and as many again per
    checkpoint copy) would not fit in half of this machine's memory, naming ``setting``."""
    needed = 8 * dim * count * (2 + checkpoint_copies)  # the draws, a float64 copy, checkpoints
    check_bytes(setting, needed, f"{count} draws of dimension {dim}")


def check_bytes(setting: str, needed: int, what: str) -> None:
    """Refuse a working array of ``needed`` bytes that would not fit in half of this machine's
    memory, naming the ``setting`` that sizes it."""
    available = physical_memory_bytes() // 2
    if needed > available:
        raise SettingsError(
            f"setting {setting!r}: {what} needs ~{needed / 2**30:.1f} GiB, more than half of "
            f"this machine's memory ({available / 2**30:.1f} GiB)"
        )
