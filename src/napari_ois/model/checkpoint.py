"""Checkpoint files: one ``.pt`` holding config, weights and how they were made.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    {"format": "napari-ois-checkpoint", "version": 1,
     "config": ModelConfig.to_dict(),
     "state_dict": {name: tensor},
     "metadata": {"data": ..., "steps": int, "wall_time_s": float, "metrics": {...}, ...}}

Errors: a missing file (or no packaged default) is :class:`BackendUnavailable`;
a file that exists but cannot be used (garbage, truncated, wrong keys/shapes, bad
config) is :class:`InputError`. Both messages name the file and what to do.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..core.errors import BackendUnavailable, InputError
from .config import ModelConfig, preset_config
from .network import OISModel
from .runtime import resolve_device

FORMAT = "napari-ois-checkpoint"
VERSION = 1
PACKAGE_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_NAME = "default"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("napari-ois")
    except Exception:  # noqa: BLE001 - metadata is informational only
        return "unknown"


def save_checkpoint(path: str | Path, model: OISModel, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (config + weights) and ``metadata`` to one file, atomically.

    Parameters
    ----------
    path : str or Path
        Destination ``.pt`` file (parent folders are created).
    model : OISModel
        The network; its ``config`` is stored with it.
    metadata : dict, optional
        ``data`` (what it was trained on), ``steps``, ``wall_time_s``, ``metrics``
        and anything else JSON-like; missing standard keys are filled in.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"data": None, "steps": 0, "wall_time_s": 0.0, "metrics": {}}
    meta.update(metadata or {})
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("napari_ois", _version())
    meta.setdefault("torch", str(torch.__version__))  # TorchVersion is not weights_only-safe
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    # Write next to the target and rename: a crash never leaves a half-written checkpoint.
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def resolve_checkpoint(name_or_path: str | Path | None = None) -> Path:
    """The file behind a checkpoint name or path.

    ``None`` or ``"default"`` is the checkpoint shipped in the package; another bare
    name is looked up there too (``<name>.pt``); anything else is a path.

    Raises
    ------
    BackendUnavailable
        No such file (with what to do instead).
    """
    if name_or_path is None or str(name_or_path) == DEFAULT_NAME:
        path = PACKAGE_CHECKPOINTS / f"{DEFAULT_NAME}.pt"
        if not path.is_file():
            raise BackendUnavailable(
                f"no trained checkpoint is installed for the 'ois' backend (expected {path}); "
                "use --checkpoint PATH or --backend classical"
            )
        return path
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    packaged = PACKAGE_CHECKPOINTS / f"{name_or_path}.pt"
    if os.sep not in str(name_or_path) and packaged.is_file():
        return packaged
    raise BackendUnavailable(f"checkpoint not found: {path} (use --checkpoint PATH or --backend classical)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check the checkpoint dict (not yet the model).

    Raises
    ------
    BackendUnavailable
        The file does not exist.
    InputError
        Not a torch file (garbage or truncated), or not a napari-ois checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise BackendUnavailable(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad bytes
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"checkpoint {path} is corrupt or truncated and cannot be read ({type(exc).__name__}: {detail}); "
            "download or copy it again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is a torch file but not a napari-ois checkpoint (no '{FORMAT}' header)")
    if not isinstance(payload.get("version"), int) or payload["version"] > VERSION:
        raise InputError(
            f"checkpoint {path} has format version {payload.get('version')!r}; "
            f"this napari-ois reads up to {VERSION} (upgrade napari-ois)"
        )
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("state_dict"), dict):
        raise InputError(f"checkpoint {path} lacks its config or its weights")
    return payload


def _check_state(path: Path, model: OISModel, state: dict[str, Any]) -> None:
    """Raise a readable :class:`InputError` when weights and architecture disagree."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weight(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weight(s) (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es) (file vs config: {'; '.join(wrong[:3])})")
    if problems:
        raise InputError(
            f"checkpoint {path} does not match its own config (preset {model.config.preset!r}, "
            f"backbone {model.config.backbone!r}): {', '.join(problems)}"
        )


def load_model(name_or_path: str | Path | None = None, device: str | torch.device = "cpu") -> OISModel:
    """Build the network a checkpoint describes and load its weights.

    Parameters
    ----------
    name_or_path : str or Path, optional
        ``None``/``"default"`` = the packaged checkpoint; else a name in the
        package's ``checkpoints/`` folder or a file path.
    device : str or torch.device
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``mps``.

    Returns
    -------
    OISModel
        In eval mode on ``device``; ``model.metadata`` holds the checkpoint's
        metadata and ``model.checkpoint_path`` its file.
    """
    path = resolve_checkpoint(name_or_path)
    payload = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(payload["config"])
    except InputError as exc:
        raise InputError(f"checkpoint {path}: {exc}") from None
    try:
        model = OISModel(config)
    except InputError as exc:
        raise InputError(f"checkpoint {path} describes a model that cannot be built: {exc}") from None
    state = payload["state_dict"]
    _check_state(path, model, state)
    model.load_state_dict(state, strict=True)
    model.metadata = dict(payload.get("metadata") or {})
    model.checkpoint_path = str(path)
    return model.eval().to(resolve_device(device))


def make_random_checkpoint(path: str | Path, preset: str = "tiny", seed: int = 0, **overrides: Any) -> Path:
    """Write a random-init checkpoint of ``preset`` (for benchmarks and tests until a trained one ships)."""
    torch.manual_seed(seed)
    model = OISModel(preset_config(preset, **overrides))
    return save_checkpoint(path, model, {"data": "random init (untrained)", "steps": 0, "seed": seed})
