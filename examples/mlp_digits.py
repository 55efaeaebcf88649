"""Train an MLP on scikit-learn's handwritten digits with tracejit.grad and a compiled step.

    python -m pip install -e ".[examples]" && python examples/mlp_digits.py

The 8x8 digits (1797 images, shipped inside scikit-learn: no download) are split 75/25. The
model is 64-128-10 with tanh and a softmax cross-entropy loss, trained with Adam on
mini-batches; one compiled function does the whole step (forward, backward, update). Prints the
loss per epoch and the test accuracy, and saves the loss curve to ``mlp_digits_loss.png``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp


def predict(params, x):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]  # logits


def loss_fn(params, x, y_onehot):
    logits = predict(params, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - tnp.log(tnp.exp(z).sum(axis=1, keepdims=True))
    return -(logp * y_onehot).sum() / x.shape[0]


@tracejit.compile
def train_step(params, m, v, t, x, y_onehot):
    """One Adam step: returns the loss and the new parameters and moments."""
    loss, g = tracejit.value_and_grad(loss_fn)(params, x, y_onehot)
    lr, b1, b2 = 0.01, 0.9, 0.999
    new_p, new_m, new_v = {}, {}, {}
    for k in params:
        new_m[k] = b1 * m[k] + (1 - b1) * g[k]
        new_v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
        mhat = new_m[k] / (1 - b1 ** t)
        vhat = new_v[k] / (1 - b2 ** t)
        new_p[k] = params[k] - lr * mhat / (tnp.sqrt(vhat) + 1e-8)
    return loss, new_p, new_m, new_v


@tracejit.compile
def accuracy(params, x, labels):
    return (tnp.argmax(predict(params, x), axis=1) == labels).mean()


def load(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.25, random_state=seed,
                            stratify=digits.target)


def main(epochs=30, batch=64, plot="mlp_digits_loss.png", verbose=True) -> dict:
    x_train, x_test, y_train, y_test = load()
    rng = np.random.default_rng(0)
    hidden = 128
    params = {"w1": (rng.standard_normal((64, hidden)) / 8).astype(np.float32),
              "b1": np.zeros(hidden, np.float32),
              "w2": (rng.standard_normal((hidden, 10)) / np.sqrt(hidden)).astype(np.float32),
              "b2": np.zeros(10, np.float32)}
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    onehot = np.eye(10, dtype=np.float32)[y_train]
    losses, t = [], 0
    started = time.perf_counter()
    n_batches = len(x_train) // batch  # full batches only: one compiled signature
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            t += 1
            loss, params, m, v = train_step(params, m, v, np.float32(t), x_train[idx],
                                            onehot[idx])
            total += float(loss)
        losses.append(total / n_batches)
        if verbose and (epoch % 5 == 0 or epoch == epochs - 1):
            print(f"epoch {epoch:3d}  loss {losses[-1]:.4f}")
    elapsed = time.perf_counter() - started
    test_acc = float(accuracy(params, x_test, y_test))
    train_acc = float(accuracy(params, x_train, y_train))
    if verbose:
        print(f"{epochs} epochs ({t} compiled steps) in {elapsed:.1f} s "
              f"(the first steps ran on the interpreter while the "
              "compiled step was built in the background)")
        print(f"train accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(range(1, len(losses) + 1), losses, marker="o", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_yscale("log")
        ax.set_title(f"MLP on sklearn digits: test accuracy {test_acc:.1%}")
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        plt.close(fig)
        if verbose:
            print(f"loss curve saved to {plot}")
    return {"test_accuracy": test_acc, "train_accuracy": train_acc, "losses": losses,
            "seconds": elapsed}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", default="mlp_digits_loss.png")
    args = parser.parse_args()
    result = main(args.epochs, plot=args.plot)
    assert result["test_accuracy"] >= 0.95, "expected at least 95% test accuracy"
