"""Logistic regression fitted by Newton's method, with ``tracejit.grad`` and ``tracejit.hessian``.

    python examples/logistic_regression.py

Minimises the mean logistic loss plus a small L2 penalty on synthetic data. Each Newton step
solves H d = g with the exact Hessian (a compiled ``tracejit.hessian``) and the compiled
gradient; convergence is quadratic, so a handful of steps reach machine precision. The Hessian
is checked against the closed form X^T diag(p (1 - p)) X / n + lam I, and, where scikit-learn is
installed, the weights against its LogisticRegression with the same penalty.
"""
from __future__ import annotations

import argparse

import numpy as np

import tracejit
import tracejit.numpy as tnp

LAM = 1e-2


def loss(w, x, y):
    """Mean logistic loss with labels y in {0, 1}, plus (LAM / 2) |w|^2 (no penalty on w[0],
    the intercept: x[:, 0] is all ones)."""
    z = x @ w
    # log(1 + exp(z)) - y z; logaddexp(0, z) stays finite for large |z|
    return (tnp.logaddexp(0.0, z) - y * z).mean() + 0.5 * LAM * (w[1:] ** 2).sum()


def make_data(rng, n, d):
    x = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, d))], axis=1)
    true_w = rng.standard_normal(d + 1)
    p = 1.0 / (1.0 + np.exp(-(x @ true_w)))
    return x, (rng.random(n) < p).astype(np.float64), true_w


def main(n=2000, d=10, steps=10, verbose=True) -> dict:
    rng = np.random.default_rng(0)
    x, y, _ = make_data(rng, n, d)
    grad = tracejit.compile(tracejit.grad(loss))
    hess = tracejit.compile(tracejit.hessian(loss))
    value = tracejit.compile(loss)
    w = np.zeros(d + 1)
    history = []
    for k in range(steps):
        g = grad(w, x, y)
        history.append(float(np.linalg.norm(g)))
        if verbose:
            print(f"Newton step {k}: loss {float(value(w, x, y)):.12f}  |grad| {history[-1]:.2e}")
        if history[-1] < 1e-13:
            break
        w = w - np.linalg.solve(hess(w, x, y), g)
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    closed_form = (x * (p * (1 - p))[:, None]).T @ x / n + LAM * np.diag([0.0] + [1.0] * d)
    result = {"grad_norms": history, "weights": w,
              "hessian_error": float(np.abs(hess(w, x, y) - closed_form).max()),
              "accuracy": float(((x @ w > 0) == (y > 0.5)).mean())}
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        result["sklearn_difference"] = None
    else:  # sklearn's C is 1 / (n * LAM) for a mean loss; its intercept is not penalised
        model = LogisticRegression(C=1.0 / (n * LAM), tol=1e-12, max_iter=10000)
        model.fit(x[:, 1:], y)
        theirs = np.concatenate([model.intercept_, model.coef_[0]])
        result["sklearn_difference"] = float(np.abs(theirs - w).max())
    if verbose:
        print(f"Hessian vs closed form: max error {result['hessian_error']:.2e}")
        print(f"training accuracy {result['accuracy']:.3f}")
        if result["sklearn_difference"] is not None:
            print(f"weights vs scikit-learn's LogisticRegression: max difference "
                  f"{result['sklearn_difference']:.2e}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    r = main()
    assert r["grad_norms"][-1] < 1e-10 and r["hessian_error"] < 1e-12
