"""JSON encodings of what the autosave journal holds: actions, clicks, masks, label planes.

Masks travel as the session packs them for undo (``np.packbits`` + zlib, see
``core/session.py``), base64-encoded: a propagated 480x854 mask is ~1-3 kB of text.
Click probabilities (``Action.probs``, fed back to the next click on that frame) travel
as the session keeps them: 8-bit levels, zlib-compressed (``core/packed_prob.py``), so
a restored session refines the next click exactly as the original one would.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import fields
from typing import Any

import numpy as np

from ..boxes import BoxPrompt
from ..clicks import Click
from ..errors import InputError
from ..packed_prob import pack_prob
from ..history import Action, pack_mask, unpack_mask


def encode_bytes(blob: bytes) -> str:
    """Bytes as ASCII text (base64)."""
    return base64.b64encode(blob).decode("ascii")


def decode_bytes(text: str) -> bytes:
    """Inverse of :func:`encode_bytes`."""
    return base64.b64decode(text.encode("ascii"))


def decode_mask(text: str, shape: tuple[int, int]) -> np.ndarray:
    """A journaled mask (base64 of a packed mask, as in ``Action.masks``) as (Y, X) bool."""
    return unpack_mask(decode_bytes(text), shape)


def encode_prob(prob: Any) -> dict[str, Any] | None:
    """A (Y, X) probability (array or PackedProb) as 8-bit levels, zlib + base64; None stays None."""
    if prob is None:
        return None
    values = np.nan_to_num(np.asarray(prob, dtype=np.float32), nan=0.0)
    levels = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    return {"shape": list(levels.shape), "levels": encode_bytes(zlib.compress(levels.tobytes(), 1))}


def decode_prob(record: dict[str, Any] | None) -> Any:
    """Inverse of :func:`encode_prob`: the same packed probability the session held."""
    if record is None:
        return None
    levels = np.frombuffer(zlib.decompress(decode_bytes(record["levels"])), dtype=np.uint8)
    return pack_prob(levels.reshape(record["shape"]).astype(np.float32) / np.float32(255))


def encode_plane(plane: np.ndarray) -> dict[str, Any]:
    """A (Y, X) integer label plane as ``{"dtype", "shape", "data"}`` (zlib + base64)."""
    plane = np.ascontiguousarray(plane)
    return {
        "dtype": plane.dtype.str,
        "shape": list(plane.shape),
        "data": encode_bytes(zlib.compress(plane.tobytes(), 1)),
    }


def decode_plane(record: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_plane`; a (Y, X) array."""
    raw = zlib.decompress(decode_bytes(record["data"]))
    return np.frombuffer(raw, dtype=np.dtype(record["dtype"])).reshape(record["shape"]).copy()


def score_pair(pair: tuple) -> list:
    """(score before, score after) as JSON numbers (backends may give numpy scalars)."""
    return [None if v is None else float(v) for v in pair]


def _clicks_to_list(clicks: list[Click]) -> list[list]:
    return [[float(c.y), float(c.x), int(c.positive)] for c in clicks]


def _clicks_from_list(object_id: int, frame: int, rows: list[list]) -> list[Click]:
    return [Click(object_id, frame, float(y), float(x), bool(p)) for y, x, p in rows]


def _box_to_list(box: BoxPrompt | None) -> list[float] | None:
    return None if box is None else [float(box.y0), float(box.x0), float(box.y1), float(box.x1)]


def _box_from_list(row: list | None) -> BoxPrompt | None:
    return None if row is None else BoxPrompt(*(float(v) for v in row))


def action_to_record(action: Action) -> dict[str, Any]:
    """Everything an undo step holds, as JSON-ready data.

    Parameters
    ----------
    action : Action
        A click, mask, clear or run (a multi-object run: with its ``parts``).
    """
    record: dict[str, Any] = {
        "kind": action.kind,
        "object": int(action.object_id),
        "masks": {str(f): [encode_bytes(b), encode_bytes(a)] for f, (b, a) in action.masks.items()},
        "clicks": {
            str(f): [_clicks_to_list(b), _clicks_to_list(a)] for f, (b, a) in action.clicks.items()
        },
        "keyframes": None if action.keyframes is None else [sorted(int(f) for f in side) for side in action.keyframes],
        "scores": {str(f): score_pair(pair) for f, pair in action.scores.items()},
        "probs": {str(f): [encode_prob(b), encode_prob(a)] for f, (b, a) in action.probs.items()},
    }
    if action.boxes:  # absent from older journals, which hold no box
        record["boxes"] = {str(f): [_box_to_list(b), _box_to_list(a)] for f, (b, a) in action.boxes.items()}
    parts = getattr(action, "parts", None)
    if parts:
        record["parts"] = [action_to_record(p) for p in parts]
    return record


def action_from_record(record: dict[str, Any]) -> Action:
    """Rebuild an :class:`Action` from :func:`action_to_record` data.

    Raises
    ------
    InputError
        The record lacks a field or holds a malformed one.
    """
    try:
        obj = int(record["object"])
        keyframes = record.get("keyframes")
        action = Action(
            kind=str(record["kind"]),
            object_id=obj,
            masks={int(f): (decode_bytes(b), decode_bytes(a)) for f, (b, a) in record.get("masks", {}).items()},
            clicks={
                int(f): (_clicks_from_list(obj, int(f), b), _clicks_from_list(obj, int(f), a))
                for f, (b, a) in record.get("clicks", {}).items()
            },
            keyframes=None if keyframes is None else (frozenset(keyframes[0]), frozenset(keyframes[1])),
            scores={int(f): (b, a) for f, (b, a) in record.get("scores", {}).items()},
            probs={int(f): (decode_prob(b), decode_prob(a)) for f, (b, a) in record.get("probs", {}).items()},
            boxes={int(f): (_box_from_list(b), _box_from_list(a)) for f, (b, a) in record.get("boxes", {}).items()},
        )
        if record.get("parts"):
            if "parts" not in {f.name for f in fields(Action)}:
                raise InputError("this napari-ois cannot read multi-object runs")
            action.parts = [action_from_record(p) for p in record["parts"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed action record in the autosave journal: {exc!r}") from None
    return action


def request_of(action: Action) -> dict[str, Any]:
    """What the user asked for, so that a replay can do it again.

    A click: the click (the last one of its frame). A box: the box. A mask: the mask as given (the
    written one may be smaller where other objects were already). Other kinds: nothing
    beyond the object id.
    """
    if action.kind == "click" and len(action.clicks) == 1:
        (frame, (_, after)), = action.clicks.items()
        c = after[-1]
        return {"click": [int(frame), float(c.y), float(c.x), int(c.positive)]}
    if action.kind == "box" and len(action.boxes) == 1:
        (frame, (_, box)), = action.boxes.items()
        return {"frame": int(frame), "box": _box_to_list(box)}
    if action.kind == "mask" and len(action.probs) == 1:
        (frame, (_, given)), = action.probs.items()
        return {"frame": int(frame), "mask": encode_bytes(pack_mask(np.asarray(given) > 0.5))}
    return {}
