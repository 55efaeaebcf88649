"""Differentially private training (DP-SGD style) of the digits MLP with per-example gradients
from ``tracejit.vmap(tracejit.grad(...))``, in one compiled step.

    python -m pip install -e ".[examples]" && python examples/per_example_gradients.py

DP-SGD needs each example's gradient on its own: every one is clipped to a norm bound before
they are summed, and Gaussian noise scaled to that bound is added to the sum. Without ``vmap``
that is a Python loop of ``grad`` calls per batch; here the loss of ONE example is written, and
``vmap`` turns its gradient into a batched one (the matrix-vector products of one example
become matrix-matrix products over the batch). The compiled step does the per-example
gradients, the clipping, the noise and the update. The script checks the per-example
gradients against a loop over ``tracejit.grad`` and prints the test accuracy.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp


def example_loss(params, x, y_onehot):
    """Cross-entropy of one example (x: 64 pixels, y_onehot: 10)."""
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    z = logits - logits.max()
    return -((z - tnp.log(tnp.exp(z).sum())) * y_onehot).sum()


per_example_grads = tracejit.vmap(tracejit.grad(example_loss), in_axes=(None, 0, 0))


@tracejit.compile
def dp_step(params, x, y_onehot, noise, lr, clip, sigma):
    """One DP-SGD step: per-example gradients clipped to norm ``clip``, summed, noised with
    standard deviation ``sigma * clip``, averaged. Returns the new parameters and the
    per-example gradient norms before clipping."""
    grads = per_example_grads(params, x, y_onehot)
    squares = [(g * g).reshape(g.shape[0], -1).sum(axis=1) for g in grads.values()]
    norms = tnp.sqrt(sum(squares))
    scale = tnp.minimum(1.0, clip / (norms + 1e-12))
    batch = x.shape[0]
    new = {}
    for k, g in grads.items():
        clipped = (g * scale.reshape((-1,) + (1,) * (g.ndim - 1))).sum(axis=0)
        new[k] = params[k] - lr * (clipped + sigma * clip * noise[k]) / batch
    return new, norms


@tracejit.compile
def accuracy(params, x, labels):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return (tnp.argmax(h @ params["w2"] + params["b2"], axis=1) == labels).mean()


def load(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.25, random_state=seed,
                            stratify=digits.target)


def init(rng, hidden=128):
    return {"w1": (rng.standard_normal((64, hidden)) / 8).astype(np.float32),
            "b1": np.zeros(hidden, np.float32),
            "w2": (rng.standard_normal((hidden, 10)) / np.sqrt(hidden)).astype(np.float32),
            "b2": np.zeros(10, np.float32)}


def loop_error(params, x, y_onehot) -> float:
    """Largest relative difference between the vmapped per-example gradients and a Python
    loop over tracejit.grad."""
    batched = tracejit.compile(per_example_grads)(params, x, y_onehot)
    worst = 0.0
    for i in range(len(x)):
        one = tracejit.grad(example_loss)(params, x[i], y_onehot[i])
        for k in params:
            scale = np.abs(one[k]).max() + 1e-6
            worst = max(worst, float(np.abs(batched[k][i] - one[k]).max() / scale))
    return worst


def main(epochs=15, batch=64, lr=2.0, clip=1.0, sigma=0.5, verbose=True) -> dict:
    x_train, x_test, y_train, y_test = load()
    rng = np.random.default_rng(0)
    params = init(rng)
    onehot = np.eye(10, dtype=np.float32)[y_train]
    error = loop_error(params, x_train[:8], onehot[:8])
    if verbose:
        print(f"per-example gradients vs a loop over tracejit.grad: max relative error "
              f"{error:.1e}")
    started = time.perf_counter()
    n_batches = len(x_train) // batch  # full batches only: one compiled signature
    clipped_share = []
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            noise = {k: rng.standard_normal(p.shape).astype(np.float32)
                     for k, p in params.items()}
            params, norms = dp_step(params, x_train[idx], onehot[idx], noise, lr, clip, sigma)
            clipped_share.append(float((norms > clip).mean()))
        if verbose and (epoch % 5 == 0 or epoch == epochs - 1):
            acc = float(accuracy(params, x_test, y_test))
            print(f"epoch {epoch:3d}  test accuracy {acc:.3f}  "
                  f"clipped {np.mean(clipped_share[-n_batches:]):.0%} of the examples")
    elapsed = time.perf_counter() - started
    test_acc = float(accuracy(params, x_test, y_test))
    if verbose:
        print(f"{epochs} epochs of DP-SGD (clip {clip}, noise multiplier {sigma}, batch "
              f"{batch}) in {elapsed:.1f} s: test accuracy {test_acc:.3f}")
    return {"test_accuracy": test_acc, "loop_error": error, "seconds": elapsed,
            "clipped_share": float(np.mean(clipped_share))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--sigma", type=float, default=0.5)
    args = parser.parse_args()
    main(args.epochs, sigma=args.sigma)
