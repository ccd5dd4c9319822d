"""PyTorch equivalent of one `nodal train particles` training step, for side-by-side timing.

Same fields as nodal's (the set Transformer: sinusoidal time features, SiLU MLP embedding, input
linear, pre-norm layers of multi-head self-attention and a GELU MLP with the time embedding added
to every token, final norm and linear; the MLP field: two tanh hidden layers on the flattened
state), same shapes (16 windows of 5 particles x 4 features, width 32, 4 heads, 2 layers, MLP
width 128), same step (RK4 at h = 0.05 over a window of 5 observation intervals of 0.1, i.e. 10
steps, backprop through the solver, MSE at the 5 observation times, Adam). The data are random
states of the right shape: the timing does not depend on them.

Prints one JSON line per model: {"model", "ms_per_step_median", "steps", "threads", "params"}.
Usage: python bench/particles_torch.py [--steps 60] [--threads 2]
"""
import argparse, json, math, time
import torch
from torch import nn


class TimeEmbedding(nn.Module):
    def __init__(self, features, width):
        super().__init__()
        self.features = features
        self.l1, self.l2 = nn.Linear(features, width), nn.Linear(width, width)

    def forward(self, t):
        m = self.features // 2
        w = torch.exp(-math.log(10000.0) * torch.arange(m, dtype=torch.float64) / m)
        e = torch.cat([torch.sin(1000.0 * t * w), torch.cos(1000.0 * t * w)]).float()[None]
        return self.l2(nn.functional.silu(self.l1(e)))


class Layer(nn.Module):
    def __init__(self, w, heads, hidden):
        super().__init__()
        self.time = nn.Linear(w, w)
        self.norm1, self.norm2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.attn = nn.MultiheadAttention(w, heads, batch_first=True)
        self.mlp1, self.mlp2 = nn.Linear(w, hidden), nn.Linear(hidden, w)

    def forward(self, h, c):
        h = h + self.time(c)[:, None, :]
        x = self.norm1(h)
        h = h + self.attn(x, x, x, need_weights=False)[0]
        return h + self.mlp2(nn.functional.gelu(self.mlp1(self.norm2(h))))


class SetTransformer(nn.Module):
    def __init__(self, features=4, w=32, heads=4, layers=2, hidden=128):
        super().__init__()
        self.time = TimeEmbedding(16, w)
        self.input = nn.Linear(features, w)
        self.layers = nn.ModuleList([Layer(w, heads, hidden) for _ in range(layers)])
        self.norm_out, self.output = nn.LayerNorm(w), nn.Linear(w, features)

    def forward(self, t, y):
        c = self.time(torch.tensor(t, dtype=torch.float64))
        h = self.input(y)
        for layer in self.layers:
            h = layer(h, c)
        return self.output(self.norm_out(h))


class MlpField(nn.Module):
    def __init__(self, n=5, hidden=128):
        super().__init__()
        d = 4 * n
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, d))

    def forward(self, t, y):
        b = y.shape[0]
        return self.net(y.reshape(b, -1)).reshape(y.shape)


def rk4_rollout(f, y, h, steps, every):
    out, t = [], 0.0
    for s in range(steps):
        k1 = f(t, y)
        k2 = f(t + h / 2, y + h / 2 * k1)
        k3 = f(t + h / 2, y + h / 2 * k2)
        k4 = f(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += h
        if (s + 1) % every == 0:
            out.append(y)
    return out


def time_model(name, model, steps, batch=16, n=5):
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    ms = []
    for i in range(steps + 10):
        y0 = torch.randn(batch, n, 4, generator=g)
        truth = [torch.randn(batch, n, 4, generator=g) for _ in range(5)]
        start = time.perf_counter()
        preds = rk4_rollout(model, y0, 0.05, 10, 2)
        loss = sum(((p - q) ** 2).mean() for p, q in zip(preds, truth)) / 5
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 10:
            ms.append((time.perf_counter() - start) * 1e3)
    ms.sort()
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": name, "ms_per_step_median": ms[len(ms) // 2], "steps": steps, "threads": torch.get_num_threads(), "params": params}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    time_model("transformer", SetTransformer(), a.steps)
    time_model("mlp", MlpField(), a.steps)
