"""Latent ODE with an ODE-RNN encoder (Rubanova, Chen & Duvenaud 2019) on PyTorch + torchdiffeq:
the timing anchor "training time per epoch" for nodal's latent ODE.  Written for this project
from the paper's description; no code is taken from the paper's repository or torchdiffeq's
examples.

Data (numpy `rng = np.random.default_rng(seed)`, float64, cast to float32):
  grid       T = 100 times t_i = 5 i / 99 on [0, 5]; N series (--n 1000), the first 80% train,
             the rest test.
  periodic   x(t) = a sin(2 pi f t + phi), a ~ U[0.5, 1.5], f ~ U[0.2, 1.0], phi ~ U[0, 2 pi],
             plus observation noise N(0, 0.01^2).  Draw order: a[N], f[N], phi[N], noise[N, T].
  pendulum   theta'' = -4 sin(theta) - 0.1 theta', theta0 ~ U[-1.5, 1.5], omega0 ~ U[-1, 1]
             (draw order: theta0[N], omega0[N], noise[N, T]); integrated by scipy's DOP853 with
             rtol = atol = 1e-10; observed x = sin(theta) + N(0, 0.05^2).
  mask       each grid point observed independently with probability --keep (u[N, T] < keep,
             drawn after the noise); a series with fewer than 2 observed points gets 2 points
             chosen by rng.choice(T, 2, replace=False) (series in index order).
             Values and a 0/1 mask, both [N, T, 1]; unobserved values are stored as 0.
             (With --keep 0.1 about 1% of series have no observed point with t < 2.5; for
             extrap their encoder input is empty and their loss is the KL term alone.)

Model (sizes are flags; defaults shown; float32; torch default initialisation, torch seed --seed):
  encoder    ODE-RNN run backwards over the whole grid, h(t_99) = 0: at each grid time, from t_99
             down to t_0, a GRUCell(input [x, mask] (2), hidden 16) gives h_new and
             h = m h_new + (1 - m) h; between t_{i+1} and t_i, h follows dh/dt = MLP(h),
             16 -> 32 -> 16 (tanh), one RK4 step (odeint(method="rk4") over [t_{i+1}, t_i]).
             Linear 16 -> 12 gives the mean and log-variance of q(z0) (6 + 6).
  decoder    z0 = mean + exp(logvar / 2) eps (one sample), dz/dt = MLP(z), 6 -> 32 -> 6 (tanh),
             one odeint(method="rk4") call over all 100 grid times (one step per interval);
             output Linear 6 -> 1.
  note       torchdiffeq's "rk4" is the 3/8-rule variant of RK4 (4 field evaluations per step,
             like the classic tableau; different coefficients).
  loss       per series: -(sum over the loss points of log N(x; x_hat, 0.1^2)) + KL(q(z0) || N(0, I)),
             averaged over the batch.  Gradients by backprop through the solver steps.
  tasks      interp: the encoder sees the observed points on [0, 5]; loss on the observed points.
             extrap: the encoder sees the observed points with t < 2.5 only (the ODE-RNN still
             runs over the whole grid; masked points do not update h); the decoder predicts all
             100 points; loss on the observed points with t < 2.5.
  training   Adam lr 1e-2, batch 50; an epoch is one pass over the training series in an order
             drawn by torch.randperm (generator seeded with --seed).  Each epoch is timed with
             time.perf_counter (batching, forward, backward, optimiser step; no evaluation).
  --eval     on the test series, with the posterior mean z0: interpolation MSE (encoder sees the
             observed points on [0, 5]; all 100 points) and extrapolation MSE (encoder sees the
             observed points with t < 2.5; the points with t >= 2.5), each against the noisy
             values and against the noise-free curve.

Output (JSON lines on stdout): one line per epoch {"epoch", "seconds", "loss", "iterations"}
(loss = mean training loss of the epoch's iterations), an {"eval": ...} line with --eval, and a
final object {"impl": "torch+torchdiffeq", "median_epoch_seconds", "params", "threads",
"config", ...}.

  python bench/latent_ode_torch.py [--data periodic|pendulum] [--task interp|extrap]
        [--keep 0.3] [--epochs 3] [--seed 0] [--eval] [--threads 2]

A recorded run (14 epochs, periodic, interp, keep 0.3, with --eval) is in
bench/results/latent_ode_torch_keep0.3.jsonl.

Threads: --threads (default 2) sets OMP/MKL threads before torch is imported and
torch.set_num_threads; OMP_WAIT_POLICY=PASSIVE as in the other anchors (shared 2-core machine).
"""
import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="periodic", choices=["periodic", "pendulum"])
    p.add_argument("--task", default="interp", choices=["interp", "extrap"])
    p.add_argument("--n", type=int, default=1000, help="number of series (first 80%% train)")
    p.add_argument("--keep", type=float, default=0.3, help="probability that a grid point is observed")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="data, initialisation and batch order")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--latent", type=int, default=6)
    p.add_argument("--rec_hidden", type=int, default=16, help="ODE-RNN hidden state")
    p.add_argument("--rec_field", type=int, default=32, help="hidden units of the encoder's ODE field")
    p.add_argument("--dec_field", type=int, default=32, help="hidden units of the latent ODE field")
    p.add_argument("--obs_std", type=float, default=0.1)
    p.add_argument("--eval", action="store_true", help="test MSE (interpolation, extrapolation)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


ARGS = parse_args()
# thread settings must be in place before torch is imported
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchdiffeq  # noqa: E402
from torch import nn  # noqa: E402
from torchdiffeq import odeint  # noqa: E402

T_POINTS = 100
T_END = 5.0
T_SPLIT = 2.5


def emit(obj):
    print(json.dumps(obj), flush=True)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def make_data(kind, n, keep, seed):
    """Returns t [T], clean [N, T], values [N, T, 1] (0 where unobserved), mask [N, T, 1] and
    the noisy values at every grid point [N, T]."""
    rng = np.random.default_rng(seed)
    t = T_END * np.arange(T_POINTS) / (T_POINTS - 1)
    if kind == "periodic":
        a = rng.uniform(0.5, 1.5, n)
        f = rng.uniform(0.2, 1.0, n)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        clean = a[:, None] * np.sin(2.0 * np.pi * f[:, None] * t[None, :] + phi[:, None])
        noisy = clean + rng.normal(0.0, 0.01, (n, T_POINTS))
    else:
        from scipy.integrate import solve_ivp
        th0 = rng.uniform(-1.5, 1.5, n)
        om0 = rng.uniform(-1.0, 1.0, n)

        def rhs(_t, y):
            th, om = y[:n], y[n:]
            return np.concatenate([om, -4.0 * np.sin(th) - 0.1 * om])

        sol = solve_ivp(rhs, (0.0, T_END), np.concatenate([th0, om0]), method="DOP853",
                        t_eval=t, rtol=1e-10, atol=1e-10)
        clean = np.sin(sol.y[:n])  # [N, T]
        noisy = clean + rng.normal(0.0, 0.05, (n, T_POINTS))
    mask = rng.random((n, T_POINTS)) < keep
    for i in range(n):
        if mask[i].sum() < 2:
            mask[i, rng.choice(T_POINTS, 2, replace=False)] = True
    mask = mask.astype(np.float64)
    return t, clean, (noisy * mask)[..., None], mask[..., None], noisy


# ------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------
class Field(nn.Module):
    """Autonomous MLP vector field d -> width -> d (tanh)."""

    def __init__(self, dim, width):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, dim))

    def forward(self, t, y):
        return self.net(y)


class LatentOde(nn.Module):
    def __init__(self, latent, rec_hidden, rec_field, dec_field):
        super().__init__()
        self.latent = latent
        self.rec_hidden = rec_hidden
        self.rec_ode = Field(rec_hidden, rec_field)
        self.gru = nn.GRUCell(2, rec_hidden)
        self.to_q = nn.Linear(rec_hidden, 2 * latent)
        self.dec_ode = Field(latent, dec_field)
        self.out = nn.Linear(latent, 1)

    def encode(self, t, x, m):
        """ODE-RNN backwards over the grid.  x, m: [B, T, 1].  Returns mean, logvar of q(z0)."""
        B, T, _ = x.shape
        h = x.new_zeros(B, self.rec_hidden)
        for i in range(T - 1, -1, -1):
            if i < T - 1:
                h = odeint(self.rec_ode, h, t[i:i + 2].flip(0), method="rk4")[-1]
            mi = m[:, i]
            h_new = self.gru(torch.cat([x[:, i], mi], 1), h)
            h = mi * h_new + (1.0 - mi) * h
        q = self.to_q(h)
        return q[:, :self.latent], q[:, self.latent:]

    def decode(self, t, z0):
        z = odeint(self.dec_ode, z0, t, method="rk4")  # [T, B, latent]
        return self.out(z).permute(1, 0, 2)  # [B, T, 1]


def neg_elbo(model, t, x_enc, m_enc, x, m_loss, obs_std):
    mean, logvar = model.encode(t, x_enc, m_enc)
    z0 = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    xhat = model.decode(t, z0)
    log_n = -0.5 * ((x - xhat) / obs_std) ** 2 - np.log(obs_std) - 0.5 * np.log(2.0 * np.pi)
    loglik = (log_n * m_loss).sum((1, 2))
    kl = 0.5 * (mean ** 2 + torch.exp(logvar) - 1.0 - logvar).sum(1)
    return (kl - loglik).mean()


def main():
    args = ARGS
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t_np, clean, values, mask, noisy = make_data(args.data, args.n, args.keep, args.seed)
    t = torch.tensor(t_np, dtype=torch.float32)
    X = torch.tensor(values, dtype=torch.float32)
    M = torch.tensor(mask, dtype=torch.float32)
    first_half = (t < T_SPLIT).float().view(1, -1, 1)
    n_train = int(0.8 * args.n)

    model = LatentOde(args.latent, args.rec_hidden, args.rec_field, args.dec_field)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)

    epoch_seconds = []
    epoch_loss = float("nan")
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n_train, generator=gen)
        losses = []
        for s in range(0, n_train, args.batch):
            idx = perm[s:s + args.batch]
            x, m = X[idx], M[idx]
            if args.task == "interp":
                m_enc = m_loss = m
            else:
                m_enc = m_loss = m * first_half
            x_enc = x * m_enc
            opt.zero_grad()
            loss = neg_elbo(model, t, x_enc, m_enc, x, m_loss, args.obs_std)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        dt = time.perf_counter() - t0
        epoch_seconds.append(dt)
        epoch_loss = float(np.mean(losses))
        emit({"epoch": epoch, "seconds": dt, "loss": epoch_loss, "iterations": len(losses)})

    result = {}
    if args.eval:
        with torch.no_grad():
            xt, mt = X[n_train:], M[n_train:]
            y_noisy = torch.tensor(noisy[n_train:], dtype=torch.float32)
            y_clean = torch.tensor(clean[n_train:], dtype=torch.float32)
            mean, _ = model.encode(t, xt, mt)
            pi = model.decode(t, mean)[..., 0]
            m_first = mt * first_half
            mean_e, _ = model.encode(t, xt * m_first, m_first)
            pe = model.decode(t, mean_e)[..., 0]
            second = t >= T_SPLIT
            result = {
                "test_series": args.n - n_train,
                "interp_mse": float(((pi - y_noisy) ** 2).mean()),
                "interp_mse_clean": float(((pi - y_clean) ** 2).mean()),
                "extrap_mse": float(((pe - y_noisy)[:, second] ** 2).mean()),
                "extrap_mse_clean": float(((pe - y_clean)[:, second] ** 2).mean()),
            }
        emit({"eval": result})

    s = sorted(epoch_seconds)
    k = len(s)
    med = s[k // 2] if k % 2 else 0.5 * (s[k // 2 - 1] + s[k // 2])
    final = {
        "impl": "torch+torchdiffeq",
        "median_epoch_seconds": med,
        "params": params,
        "threads": torch.get_num_threads(),
        "config": {
            "data": args.data, "task": args.task, "n": args.n, "n_train": n_train, "keep": args.keep,
            "grid": [0.0, T_END, T_POINTS], "epochs": args.epochs, "seed": args.seed,
            "batch": args.batch, "lr": args.lr, "latent": args.latent,
            "rec_hidden": args.rec_hidden, "rec_field": args.rec_field, "dec_field": args.dec_field,
            "obs_std": args.obs_std, "method": "rk4 (torchdiffeq, 3/8 rule), one step per interval",
            "dtype": "float32",
        },
        "epoch_seconds": epoch_seconds,
        "final_loss": epoch_loss,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "torchdiffeq": torchdiffeq.__version__, "numpy": np.__version__},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    if result:
        final["eval"] = result
    emit(final)


if __name__ == "__main__":
    main()
