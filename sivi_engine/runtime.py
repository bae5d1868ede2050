"""Device and thread selection."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Literal

import torch

from sivi_engine.settings import SettingsError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is visible, else the CPU; ``cuda`` without a GPU is an
    error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise SettingsError(
            "device 'cuda' was asked for but no CUDA device is visible; use auto or cpu"
        )
    if choice not in ("cpu", "cuda"):
        raise SettingsError(f"device {choice!r} is not allowed; allowed values: auto, cpu, cuda")
    return torch.device(choice)


def describe_device(device: torch.device) -> str:
    """``cpu`` or ``cuda:<name>`` for provenance."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_POOL_BYTES = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks of up to 256 MiB instead of unmapping them.

    Training allocates and frees the same n×n kernel matrices every step; by default glibc
    returns blocks above its mmap threshold to the OS, and the fresh pages then fault in again
    on first touch (about a third of a CPU training step at batch 500). Returns False where the
    C library is not glibc (the call is then a no-op).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_POOL_BYTES // 8)
        and mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_POOL_BYTES)
    )
