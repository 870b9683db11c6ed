"""A small model zoo for the tasks: a fast CNN for small images and an MLP.

Both take flat rows (``[n, d]``) as well as shaped input, so the same arrays a
task hands the sandbox (``X_train`` of shape ``[n, 784]``) can be trained on
directly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks with batch norm (two of them max-pooled), global
    average pooling, dropout and a linear head.

    ``widths=(32, 64, 128)`` gives about 94k parameters; fast enough on a CPU for
    28x28 images (see bench/trainer_bench.py). Input: ``[n, H*W*C]``,
    ``[n, H, W]`` or ``[n, C, H, W]``.
    """

    def __init__(
        self,
        num_classes: int,
        image_shape: tuple[int, int] = (28, 28),
        *,
        in_channels: int = 1,
        widths: tuple[int, int, int] = (32, 64, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"SmallCNN needs num_classes >= 2, got {num_classes}")
        h, w = image_shape
        self.image_shape = (int(h), int(w))
        self.in_channels = in_channels
        c1, c2, c3 = widths
        # Pool only while the map is still at least 4 pixels on a side.
        pool1 = min(h, w) >= 4
        pool2 = min(h, w) // (2 if pool1 else 1) >= 4
        self.features = nn.Sequential(
            _conv_block(in_channels, c1, pool1),
            _conv_block(c1, c2, pool2),
            _conv_block(c2, c3, False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c3, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.image_shape
        if x.dim() == 2:
            if x.shape[1] != self.in_channels * h * w:
                raise ValueError(
                    f"SmallCNN expects rows of {self.in_channels}x{h}x{w} = "
                    f"{self.in_channels * h * w} values, got {x.shape[1]}; "
                    "set image_shape/in_channels to match the data"
                )
            x = x.view(-1, self.in_channels, h, w)
        elif x.dim() == 3:
            x = x.unsqueeze(1)
        out: torch.Tensor = self.head(self.features(x))
        return out


class MLP(nn.Module):
    """Fully connected ReLU layers with batch norm and dropout.

    ``hidden`` is one width or a sequence of widths (one hidden layer each).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int | tuple[int, ...] | list[int] = 256,
        num_classes: int = 10,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        prev = in_dim
        for width in widths:
            layers += [
                nn.Linear(prev, width),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            prev = width
        layers.append(nn.Linear(prev, num_classes))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def square_image_shape(dim: int) -> tuple[int, int] | None:
    """``(s, s)`` when ``dim`` is a perfect square of at least 8x8 pixels, else None."""
    side = math.isqrt(dim)
    if side * side == dim and side >= 8:
        return (side, side)
    return None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
