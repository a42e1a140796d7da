"""Time the LiteMedSAM encoder and one box prompt on a real dev frame (issue #19).

Usage: python scripts/time_litemedsam.py [--repeats 3]; prints median seconds (1 torch thread).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from napari_ois.core.boxes import box_of_mask
from napari_ois.core.io import read_image_file
from napari_ois.model.litemedsam import LiteMedSAMSegmenter

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "coco_mval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    image_path = sorted((DEV / "img").iterdir())[0]
    mask_path = next((DEV / "gt").glob(image_path.stem + "*"))
    frame = read_image_file(image_path).astype(np.float32)
    frame = frame / 255.0 if frame.max() > 1 else frame
    truth = read_image_file(mask_path)
    truth = (truth[..., 0] if truth.ndim == 3 else truth) > 0
    segmenter = LiteMedSAMSegmenter("cpu")
    encode, prompt = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        embedding = segmenter.encode(frame)
        encode.append(time.perf_counter() - start)
        start = time.perf_counter()
        segmenter.predict(embedding, [], None, None, box=box_of_mask(truth))
        prompt.append(time.perf_counter() - start)
    print(f"{image_path.name} {frame.shape[1]}x{frame.shape[0]}: encode {np.median(encode):.2f} s, "
          f"box prompt {1000 * np.median(prompt):.0f} ms (median of {args.repeats}, 1 thread)")


if __name__ == "__main__":
    main()
