"""The latent SDE of `nodal train latent-sde`, on PyTorch + torchsde, for a side-by-side timing.

Written from Li et al. (2020), "Scalable gradients for stochastic differential equations", §5 and
§7.3, with the same settings as nodal's defaults:

  data       stochastic Lorenz (sigma 10, rho 28, beta 8/3, multiplicative noise 0.15 x_i, Ito),
             x0 ~ N(0, I), 100 observation times on [0, 1], Euler-Maruyama with 10 steps per
             interval, standardised per coordinate, observation noise 0.01; 1024 training series
  encoder    GRU(3 -> hidden) over the reversed series, Linear(hidden -> context)
  q(z0)      Linear(context -> 2 latent) of the context at t0: mean and log std
  drifts     posterior MLP([z, c_i]) latent+context -> hidden -> hidden -> latent, prior MLP(z)
             latent -> hidden -> hidden -> latent, activation a (tanh, or softplus)
  diffusion  diagonal, g_i(z_i) = sigmoid(w2_i . a(w1_i z_i + b1_i) + b2_i), 16 hidden units
  decoder    Linear(latent -> 3), Laplace likelihood of scale 0.01
  objective  -(log-lik - w (KL(q(z0)||p(z0)) + path KL)), w rising to 1 over 500 iterations;
             the path KL from torchsde's logqp (its own augmented state)
  solver     sdeint, method euler (Ito), dt = observation spacing, backprop through the solver
  optimiser  Adam, lr 1e-2, x0.999 per iteration; batch 256 series, float32

  python latent_sde_torchsde.py [--iters 30] [--batch 256] [--activation tanh|softplus]

Prints JSON lines: a header (versions, threads), one line per iteration, and a summary with the
median milliseconds per iteration over the iterations after the first three.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("ANCHORS_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "anchors")))
import anchors_common  # noqa: E402,F401  (pins threads before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchsde  # noqa: E402
from torch import nn  # noqa: E402


def lorenz_paths(n, points, seed, substeps=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    dt = 1.0 / ((points - 1) * substeps)
    out = [x.copy()]
    for i in range(points - 1):
        for _ in range(substeps):
            f = np.stack([10.0 * (x[:, 1] - x[:, 0]), x[:, 0] * (28.0 - x[:, 2]) - x[:, 1],
                          x[:, 0] * x[:, 1] - 8.0 / 3.0 * x[:, 2]], 1)
            x = x + f * dt + 0.15 * x * rng.normal(size=x.shape) * np.sqrt(dt)
        out.append(x.copy())
    return np.stack(out, 1)  # [n, T, 3]


ACTIVATIONS = {"tanh": (nn.Tanh, torch.tanh), "softplus": (nn.Softplus, nn.functional.softplus)}


def mlp(widths, act):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i + 2 < len(widths):
            layers.append(ACTIVATIONS[act][0]())
    return nn.Sequential(*layers)


class LatentSde(nn.Module):
    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, latent, context, hidden, dhidden, act):
        super().__init__()
        self.act = ACTIVATIONS[act][1]
        self.gru = nn.GRU(3, hidden, batch_first=True)
        self.ctx = nn.Linear(hidden, context)
        self.qz0 = nn.Linear(context, 2 * latent)
        self.post = mlp([latent + context, hidden, hidden, latent], act)
        self.prior = mlp([latent, hidden, hidden, latent], act)
        self.w1 = nn.Parameter(torch.empty(latent, dhidden).uniform_(-1, 1))
        self.b1 = nn.Parameter(torch.empty(latent, dhidden).uniform_(-1, 1))
        bound = dhidden ** -0.5
        self.w2 = nn.Parameter(torch.empty(latent, dhidden).uniform_(-bound, bound))
        self.b2 = nn.Parameter(torch.empty(latent).uniform_(-bound, bound))
        self.dec = nn.Linear(latent, 3)
        self.pz0_mean = nn.Parameter(torch.zeros(1, latent))
        self.pz0_logstd = nn.Parameter(torch.zeros(1, latent))
        self._c = None
        self._ts = None

    def f(self, t, z):
        i = min(int(torch.searchsorted(self._ts, t, right=True)) - 1, self._ts.numel() - 1)
        return self.post(torch.cat([z, self._c[:, i]], 1))

    def h(self, t, z):
        return self.prior(z)

    def g(self, t, z):
        hid = self.act(z.unsqueeze(2) * self.w1 + self.b1)
        return torch.sigmoid((hid * self.w2).sum(2) + self.b2)

    def loss(self, xs, ts, noise, kl_w):
        c = self.ctx(self.gru(xs.flip(1))[0]).flip(1)
        self._c, self._ts = c, ts
        mu, logstd = self.qz0(c[:, 0]).chunk(2, 1)
        z0 = mu + logstd.exp() * torch.randn_like(mu)
        zs, log_ratio = torchsde.sdeint(self, z0, ts, method="euler", dt=float(ts[1] - ts[0]), logqp=True)
        recon = self.dec(zs.transpose(0, 1))
        log_lik = torch.distributions.Laplace(recon, noise).log_prob(xs).sum((1, 2)).mean()
        q = torch.distributions.Normal(mu, logstd.exp())
        p = torch.distributions.Normal(self.pz0_mean, self.pz0_logstd.exp())
        kl_z0 = torch.distributions.kl_divergence(q, p).sum(1).mean()
        kl_path = log_ratio.sum(0).mean()
        return -(log_lik - kl_w * (kl_z0 + kl_path)), log_lik, kl_z0, kl_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--n_train", type=int, default=1024)
    ap.add_argument("--latent", type=int, default=4)
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    raw = lorenz_paths(a.n_train, a.points, a.seed)
    mean, std = raw.reshape(-1, 3).mean(0), raw.reshape(-1, 3).std(0)
    rng = np.random.default_rng(a.seed + 1)
    xs_all = torch.tensor((raw - mean) / std + 0.01 * rng.normal(size=raw.shape), dtype=torch.float32)
    ts = torch.linspace(0, 1, a.points)
    model = LatentSde(a.latent, a.context, a.hidden, 16, a.activation)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.999)
    print(json.dumps({"header": True, "torch": torch.__version__, "torchsde": torchsde.__version__,
                      "threads": torch.get_num_threads(), "args": vars(a)}), flush=True)
    ms = []
    for it in range(a.iters):
        t0 = time.perf_counter()
        idx = torch.from_numpy(rng.choice(a.n_train, a.batch, replace=False))
        loss, ll, k0, kp = model.loss(xs_all[idx], ts, 0.01, min(1.0, (it + 1) / 500))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ms.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"iter": it + 1, "loss": loss.item(), "log_lik": ll.item(), "kl_z0": k0.item(),
                          "kl_path": kp.item(), "ms": ms[-1]}), flush=True)
    warm = sorted(ms[3:] if len(ms) > 3 else ms)
    print(json.dumps({"summary": True, "median_ms_per_iter": warm[len(warm) // 2], "iters": a.iters}), flush=True)


if __name__ == "__main__":
    main()
