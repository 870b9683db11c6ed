"""The model: a small CNN (three conv blocks, global pooling), sized to the images."""

from __future__ import annotations

from config import Config
from torch import nn

from agentdeck.engine.trainer import SmallCNN, count_parameters


def build_model(num_classes: int, image_shape: tuple[int, int], cfg: Config) -> nn.Module:
    return SmallCNN(num_classes, image_shape, widths=cfg.widths, dropout=cfg.dropout)


def describe(model: nn.Module) -> str:
    return f"{type(model).__name__} with {count_parameters(model):,} parameters"
