"""Experiment behind results/training/README.md: does adding the prompt maps (previous mask +
click disks) to the stride-4 decoder path get the from-scratch tiny model off the all-background
plateau sooner? Usage: python scripts/experiments/prompt_fusion_check.py fused|plain (200 steps,
128 px, batch 8, synthetic + COCO training stream, 1 thread). Not used by the package."""
import sys, numpy as np, torch, torch.nn.functional as F
from torch import nn
torch.set_num_threads(1)
from napari_ois.model.config import preset_config
from napari_ois.model.network import OISModel
from napari_ois.model.prompts import rasterise_disks
from napari_ois.train.real_data import mixed_stream
from napari_ois.train.step import StepSettings, training_step
torch.manual_seed(0)
m = OISModel(preset_config("tiny", image_size=128)).train()
if sys.argv[1] == "fused":
    d4 = m.decoder.up4.out_channels
    m.skip_prompt = nn.Sequential(nn.Conv2d(3, d4, 3, padding=1), nn.GELU(), nn.Conv2d(d4, d4, 1))
    orig_fp, orig_dec = m.forward_prompt, m.decoder.forward
    state = {}
    def fp(cache, prompts, reference=None, return_attention=False):
        size = m.config.image_size
        disks = rasterise_disks(prompts.points.float(), prompts.labels.long(), size, m.config.click_radius)
        prev = prompts.prev_prob if prompts.prev_prob is not None else torch.zeros_like(disks[:, :1])
        state["maps"] = F.avg_pool2d(torch.cat([prev.float(), disks], 1), 4)
        return orig_fp(cache, prompts, reference, return_attention)
    def dec(tokens, skip8, skip4, size):
        extra = m.skip_prompt(state["maps"])
        skip4 = extra if skip4 is None else skip4 + extra
        return orig_dec(tokens, skip8, skip4, size)
    m.forward_prompt, m.decoder.forward = fp, dec
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
stream = mixed_stream(0, 128, {"synthetic": 1, "coco": 1})
ious = []
for i in range(200):
    samples = [next(stream) for _ in range(8)]
    out = training_step(m, samples, np.random.default_rng(i), StepSettings(max_iter_clicks=0))
    opt.zero_grad(); out["loss"].backward(); opt.step()
    ious.append(out["train_iou"])
    if i % 25 == 24:
        print(sys.argv[1], i + 1, "nfl", round(out["nfl"], 4), "train IoU (last 25)", round(float(np.mean(ious[-25:])), 3), flush=True)
