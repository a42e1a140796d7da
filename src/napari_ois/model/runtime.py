"""Where and how the model runs: device choice and mixed precision."""

from __future__ import annotations

import contextlib

import torch

from ..core.errors import BackendUnavailable


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda > mps > cpu; an explicit device must be available.

    Raises
    ------
    BackendUnavailable
        ``cuda``/``mps`` asked for but not usable here.
    """
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable("device 'cuda' was asked for but no CUDA GPU is usable; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise BackendUnavailable("device 'mps' was asked for but is not available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise BackendUnavailable(f"unknown device {name!r}: {exc}") from None


def autocast_for(device: torch.device):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA; full precision elsewhere.

    CPU autocast is slower than fp32 on most CPUs, and MPS coverage of reduced
    precision ops is uneven, so only CUDA gets it.
    """
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()
