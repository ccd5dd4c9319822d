"""PyTorch equivalent of one `nodal train flow-matching` training step, for side-by-side timing.

Same U-Net as nodal's (nodal::blocks::unet): conv_in, residual blocks R(C), R(C -> 2C) at half
resolution, R(2C) in the middle at a quarter, R(4C -> 2C) and R(3C -> C) on the way up with
skip concatenations, 2x2 mean pooling, nearest upsampling, GroupNorm with at most 32 groups of at
least 4 channels, SiLU, a sinusoidal time embedding (scale 1000) through a two-layer SiLU MLP
added per channel in every block, zero-initialised output convolution. Same step: a batch of
28 x 28 images, one time per image, the conditional OT path x_t = (1 - (1 - s) t) x0 + t x1, MSE
against u = x1 - (1 - s) x0, Adam. The images are random: the timing does not depend on them.

With --middle-attention H (nodal's --middle-attention) the middle is R(2C), then residual
multi-head self-attention over the 7 x 7 positions (GroupNorm, nn.MultiheadAttention with H heads,
zero-initialised output projection), then a second R(2C).

Prints one JSON line: {"model", "channels", "batch", "middle_attention", "ms_per_step_median",
"steps", "threads", "params"}.
Usage: python bench/flow_matching_torch.py [--steps 30] [--threads 2] [--channels 32] [--batch 64]
       [--middle-attention 0]
"""
import argparse, json, math, time
import torch
from torch import nn
import torch.nn.functional as F


def group_norm(c):
    most = max(1, min(32, c // 4))
    groups = next(g for g in range(most, 0, -1) if c % g == 0)
    return nn.GroupNorm(groups, c)


class TimeEmbedding(nn.Module):
    def __init__(self, features, width):
        super().__init__()
        self.features = features
        self.l1, self.l2 = nn.Linear(features, width), nn.Linear(width, width)

    def forward(self, t):
        m = self.features // 2
        w = torch.exp(-math.log(10000.0) * torch.arange(m, dtype=torch.float64) / m)
        a = 1000.0 * t[:, None].double() * w[None]
        e = torch.cat([torch.sin(a), torch.cos(a)], 1).float()
        return self.l2(F.silu(self.l1(e)))


class ResBlock(nn.Module):
    def __init__(self, ci, co, tw):
        super().__init__()
        self.norm1, self.conv1 = group_norm(ci), nn.Conv2d(ci, co, 3, padding=1)
        self.time = nn.Linear(tw, co)
        self.norm2, self.conv2 = group_norm(co), nn.Conv2d(co, co, 3, padding=1)
        self.skip = nn.Conv2d(ci, co, 1) if ci != co else None

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x))) + self.time(F.silu(c))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class SpatialAttention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.norm = group_norm(c)
        self.attention = nn.MultiheadAttention(c, heads, batch_first=True)
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        z = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        mixed, _ = self.attention(z, z, z, need_weights=False)
        return x + mixed.transpose(1, 2).reshape(b, c, h, w)


def pool(x):
    return F.avg_pool2d(x, 2)


def up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UNet(nn.Module):
    def __init__(self, c=32, tf=32, tw=64, heads=0):
        super().__init__()
        self.time = TimeEmbedding(tf, tw)
        self.conv_in = nn.Conv2d(1, c, 3, padding=1)
        self.down1, self.down2 = ResBlock(c, c, tw), ResBlock(c, 2 * c, tw)
        self.middle = ResBlock(2 * c, 2 * c, tw)
        self.middle_attention = SpatialAttention(2 * c, heads) if heads > 0 else None
        self.middle2 = ResBlock(2 * c, 2 * c, tw) if heads > 0 else None
        self.up2, self.up1 = ResBlock(4 * c, 2 * c, tw), ResBlock(3 * c, c, tw)
        self.norm_out, self.conv_out = group_norm(c), nn.Conv2d(c, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, t, x):
        c = self.time(t)
        s1 = self.down1(self.conv_in(x), c)
        s2 = self.down2(pool(s1), c)
        m = self.middle(pool(s2), c)
        if self.middle_attention is not None:
            m = self.middle2(self.middle_attention(m), c)
        u2 = self.up2(torch.cat([up(m), s2], 1), c)
        u1 = self.up1(torch.cat([up(u2), s1], 1), c)
        return self.conv_out(F.silu(self.norm_out(u1)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--middle-attention", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = UNet(a.channels, heads=a.middle_attention)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sigma = 1e-4
    times = []
    for step in range(a.steps + 3):
        start = time.perf_counter()
        x1 = torch.rand(a.batch, 1, 28, 28) * 2 - 1
        x0 = torch.randn(a.batch, 1, 28, 28)
        t = torch.rand(a.batch)
        tt = t[:, None, None, None]
        xt = (1 - (1 - sigma) * tt) * x0 + tt * x1
        u = x1 - (1 - sigma) * x0
        loss = ((net(t, xt) - u) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 3:
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    print(json.dumps({"model": "unet", "channels": a.channels, "batch": a.batch, "middle_attention": a.middle_attention,
                      "ms_per_step_median": times[len(times) // 2],
                      "steps": a.steps, "threads": a.threads, "params": sum(p.numel() for p in net.parameters())}))


if __name__ == "__main__":
    main()
