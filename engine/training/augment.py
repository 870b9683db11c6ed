"""Batch augmentations that run on the training device (``TrainConfig.transform``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class ImageAugment:
    """Random translation by up to ``max_shift`` pixels and optional horizontal flip.

    Works on a whole batch at once on its device (one ``grid_sample``), for
    flat rows ``[n, C*H*W]`` or shaped ``[n, C, H, W]`` input; returns the same
    layout. Uses torch's global RNG, which ``fit`` seeds.
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        *,
        in_channels: int = 1,
        max_shift: float = 2.0,
        hflip: bool = True,
    ) -> None:
        self.image_shape = image_shape
        self.in_channels = in_channels
        self.max_shift = float(max_shift)
        self.hflip = hflip

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.image_shape
        flat = x.dim() == 2
        xi = x.view(-1, self.in_channels, h, w) if flat else x
        n = xi.shape[0]
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=xi.dtype)
        sx = torch.ones(n, device=x.device, dtype=xi.dtype)
        if self.hflip:
            sx = torch.where(torch.rand(n, device=x.device) < 0.5, -sx, sx)
        theta[:, 0, 0] = sx
        theta[:, 1, 1] = 1.0
        if self.max_shift > 0:
            shift = torch.randint(
                -int(self.max_shift), int(self.max_shift) + 1, (n, 2), device=x.device
            ).to(xi.dtype)
            theta[:, 0, 2] = shift[:, 0] * 2.0 / w
            theta[:, 1, 2] = shift[:, 1] * 2.0 / h
        grid = F.affine_grid(theta, list(xi.shape), align_corners=False)
        out = F.grid_sample(xi, grid, mode="nearest", padding_mode="border", align_corners=False)
        return out.reshape(x.shape) if flat else out
