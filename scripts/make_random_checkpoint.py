"""Write a random-init OIS checkpoint for a preset (benchmarks and tests until a trained one ships).

Usage::

    python scripts/make_random_checkpoint.py --preset tiny --out /tmp/ois_tiny_random.pt
    python scripts/make_random_checkpoint.py --preset base --out base.pt --set use_order=false
"""

from __future__ import annotations

import argparse
import json

from napari_ois.model import PRESETS, make_random_checkpoint
from napari_ois.model.network import count_parameters
from napari_ois.model.checkpoint import load_model


def _parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare string, e.g. depth_source=user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (JSON value), e.g. order_mode=\"hard\" or use_order=false")
    args = parser.parse_args(argv)
    overrides = dict(_parse_override(t) for t in args.set)
    path = make_random_checkpoint(args.out, args.preset, args.seed, **overrides)
    model = load_model(path)
    cfg = model.config
    print(f"wrote {path}: preset {cfg.preset}, backbone {cfg.backbone} at {cfg.image_size} px, "
          f"{count_parameters(model) / 1e6:.2f}M parameters ({count_parameters(model.backbone) / 1e6:.2f}M backbone)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
