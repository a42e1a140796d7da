"""Make a trained checkpoint the packaged default, with the inference settings validated for it.

Usage: python scripts/package_checkpoint.py RUN/snap.pt [--zoom-without-clicks] [--step-residual-scale S] [--note TEXT]

Writes src/napari_ois/checkpoints/default.pt: the same weights and metadata, plus
``metadata["zoom"]`` and ``metadata["step_residual_scale"]`` (read by OISSegmenter) and
``metadata["packaged_from"]``.
"""

import argparse
from pathlib import Path

from napari_ois.model.checkpoint import load_model, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint")
parser.add_argument("--zoom-without-clicks", action="store_true",
                    help="zoom-in for pure propagation steps too (chosen on training-side checks)")
parser.add_argument("--step-residual-scale", type=float, default=1.0,
                    help="factor on the network's residual in click-free propagation steps (chosen on training-side checks)")
parser.add_argument("--note", default="")
parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/napari_ois/checkpoints/default.pt"))
args = parser.parse_args()
model = load_model(args.checkpoint, "cpu")
metadata = dict(model.metadata)
metadata["zoom"] = {"without_clicks": bool(args.zoom_without_clicks)}
metadata["step_residual_scale"] = args.step_residual_scale
metadata["packaged_from"] = {"file": Path(args.checkpoint).name, "note": args.note}
print("wrote", save_checkpoint(args.out, model, metadata))
