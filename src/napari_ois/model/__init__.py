"""The order-aware interactive segmentation (OIS) model on timm backbones.

Modules (each small, named after what it defines):

config      ModelConfig: presets (test, tiny, small, base) and ablation switches
preprocess  longest-side resize + pad (shared by training and inference)
layers      LayerNorm2d, feed-forward, area resize
backbone    timm encoder -> stride-16 tokens (+ conv skips)
depth       depth head / user depth for order maps
order       order maps from depth and clicks
prompts     dense prompt (disks + previous mask) and sparse click tokens
attention   object-aware and order-aware attention blocks
reference   reference-frame prototypes for propagation
decoder     feature pyramid + mask head
network     OISModel: encode once, forward_prompt per click
checkpoint  save_checkpoint / load_model
segmenter   OISSegmenter: the ``ois`` backend of the Segmenter protocol
runtime     device choice (cuda > mps > cpu) and CUDA autocast
"""

from .checkpoint import load_model, make_random_checkpoint, save_checkpoint
from .config import PRESETS, ModelConfig, preset_config
from .network import EncoderCache, OISModel
from .preprocess import Geometry, preprocess_image, preprocess_map, resize_pad
from .prompts import NEGATIVE, PADDING, POSITIVE, PromptBatch
from .reference import ReferencePrompt
from .segmenter import OISEmbedding, OISSegmenter

__all__ = [
    "PRESETS", "ModelConfig", "preset_config", "OISModel", "EncoderCache", "PromptBatch", "ReferencePrompt",
    "POSITIVE", "NEGATIVE", "PADDING", "Geometry", "preprocess_image", "preprocess_map", "resize_pad",
    "save_checkpoint", "load_model", "make_random_checkpoint", "OISSegmenter", "OISEmbedding",
]
