"""Gaussian-process regression: kernel hyperparameters fitted by gradient descent on the
negative log marginal likelihood, compiled with tracejit.

    python examples/gaussian_process.py [--plot gaussian_process.png]

The kernel is a squared exponential plus white noise,
k(x, x') = s^2 exp(-|x - x'|^2 / (2 l^2)) + n^2 [x == x'], with its three hyperparameters
(length scale l, signal s, noise n) optimised in log space. The negative log marginal likelihood

    0.5 y^T K^-1 y + 0.5 log det K + (N / 2) log(2 pi)

is computed with ``cholesky`` and a triangular solve for the data fit and ``slogdet`` for the
log-determinant, and differentiated by ``tracejit.value_and_grad``; the whole step is one
compiled function (numba_cpu: LAPACK called from compiled code). At the optimum the likelihood
is compared with scikit-learn's ``GaussianProcessRegressor.log_marginal_likelihood`` for the same
kernel and data (where scikit-learn is installed: it is not needed to run this), and the
gradient with central finite differences. A picture shows the data, the true function and the
posterior mean with its 95% band.
"""
from __future__ import annotations

import argparse

import numpy as np

import tracejit
import tracejit.numpy as tnp


def kernel(xa, xb, log_length, log_signal):
    """Squared-exponential kernel matrix between 1-D inputs."""
    d = xa[:, None] - xb[None, :]
    return tnp.exp(2.0 * log_signal - 0.5 * d * d * tnp.exp(-2.0 * log_length))


def covariance(theta, x):
    log_length, log_signal, log_noise = theta[0], theta[1], theta[2]
    k = kernel(x, x, log_length, log_signal)
    return k + tnp.exp(2.0 * log_noise) * tnp.eye(x.shape[0])


def neg_log_marginal_likelihood(theta, x, y):
    k = covariance(theta, x)
    chol = np.linalg.cholesky(k)
    z = tnp.linalg.solve_triangular(chol, y, lower=True)  # K^-1 = L^-T L^-1: y^T K^-1 y = |z|^2
    _, logdet = np.linalg.slogdet(k)
    return 0.5 * tnp.sum(z * z) + 0.5 * logdet + 0.5 * x.shape[0] * np.log(2 * np.pi)


def posterior(theta, x, y, x_new):
    """Posterior mean and standard deviation of the latent function at ``x_new``."""
    chol = np.linalg.cholesky(covariance(theta, x))
    k_star = kernel(x, x_new, theta[0], theta[1])
    alpha = tnp.linalg.solve_triangular(chol, tnp.linalg.solve_triangular(chol, y, lower=True),
                                        lower=True, trans=1)
    v = tnp.linalg.solve_triangular(chol, k_star, lower=True)
    var = tnp.exp(2.0 * theta[1]) - tnp.sum(v * v, axis=0)
    return k_star.T @ alpha, tnp.sqrt(tnp.maximum(var, 0.0))


def make_data(rng, n):
    x = np.sort(rng.uniform(-3.0, 3.0, n))
    truth = lambda t: np.sin(2.0 * t) + 0.3 * t  # noqa: E731
    return x, truth(x) + 0.2 * rng.standard_normal(n), truth


def sklearn_log_marginal_likelihood(theta, x, y):
    """scikit-learn's value for the same kernel and data, or None where it is not installed."""
    try:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    except ImportError:
        return None
    length, signal, noise = np.exp(theta)
    k = ConstantKernel(signal ** 2, "fixed") * RBF(length, "fixed") + \
        WhiteKernel(noise ** 2, "fixed")
    gp = GaussianProcessRegressor(k, alpha=0.0, optimizer=None, normalize_y=False)
    gp.fit(x[:, None], y)
    return float(gp.log_marginal_likelihood_value_)


def main(n=60, steps=300, learning_rate=0.05, backend="numba_cpu", plot="gaussian_process.png",
         verbose=True) -> dict:
    rng = np.random.default_rng(0)
    x, y, truth = make_data(rng, n)
    step = tracejit.compile(tracejit.value_and_grad(neg_log_marginal_likelihood),
                            backend=backend)
    theta = np.log(np.array([2.0, 0.5, 0.5]))  # length, signal, noise: a poor start
    first = None
    # Adam on the log-hyperparameters (scale-free steps suit the very different curvatures).
    m, v = np.zeros(3), np.zeros(3)
    for t in range(1, steps + 1):
        value, grad = step(theta, x, y)
        first = value if first is None else first
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        theta = theta - learning_rate * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t))
                                                                + 1e-8)
    value, grad = step(theta, x, y)
    # The gradient against central finite differences, at the optimum.
    eps = 1e-6
    fd = np.array([(step(theta + eps * e, x, y)[0] - step(theta - eps * e, x, y)[0]) / (2 * eps)
                   for e in np.eye(3)])
    sk = sklearn_log_marginal_likelihood(theta, x, y)
    result = {"nlml_start": float(first), "nlml": float(value), "theta": np.exp(theta),
              "grad": grad, "finite_difference": fd,
              "gradient_error": float(np.max(np.abs(grad - fd))),
              "sklearn_log_marginal_likelihood": sk,
              "sklearn_error": None if sk is None else abs(-float(value) - sk)}
    if verbose:
        length, signal, noise = np.exp(theta)
        print(f"negative log marginal likelihood: {first:.4f} -> {float(value):.4f} "
              f"({steps} Adam steps, backend {backend})")
        print(f"length scale {length:.3f}, signal {signal:.3f}, noise {noise:.3f} "
              f"(data noise 0.2)")
        print(f"gradient at the optimum {grad}, finite differences {fd} "
              f"(max difference {result['gradient_error']:.2e})")
        if sk is None:
            print("scikit-learn is not installed: `pip install scikit-learn` to compare the "
                  "likelihood with GaussianProcessRegressor.log_marginal_likelihood")
        else:
            print(f"log marginal likelihood: tracejit {-float(value):.10f}, scikit-learn "
                  f"{sk:.10f} (difference {result['sklearn_error']:.1e})")
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        grid = np.linspace(-3.5, 3.5, 200)
        mean, std = tracejit.compile(posterior, backend=backend)(theta, x, y, grid)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.fill_between(grid, mean - 2 * std, mean + 2 * std, alpha=0.25, label="95% band")
        ax.plot(grid, mean, label="posterior mean")
        ax.plot(grid, truth(grid), "k--", lw=1, label="true function")
        ax.plot(x, y, ".", color="C3", label="data")
        ax.set_title("Gaussian process, hyperparameters fitted by tracejit gradients")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        plt.close(fig)
        result["plot"] = plot
        if verbose:
            print(f"picture saved to {plot}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default="gaussian_process.png")
    parser.add_argument("--backend", default="numba_cpu")
    arguments = parser.parse_args()
    main(backend=arguments.backend, plot=arguments.plot)
