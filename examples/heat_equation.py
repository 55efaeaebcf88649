"""The 2-D heat equation, time-stepped inside one compiled ``fori_loop``, with a picture.

    python -m pip install -e ".[examples]" && python examples/heat_equation.py

u_t = alpha (u_xx + u_yy) on the unit square, u = 0 on the boundary, explicit finite
differences (a 5-point stencil written with slices). The whole time loop is one
compiled loop (``tracejit.fori_loop``: not unrolled, one kernel per step). Checked against the
same scheme run by NumPy, and against the exact solution for a single sine mode, which decays
as exp(-2 pi^2 alpha t). Then ``tracejit.grad`` differentiates the final temperature at the
centre with respect to the diffusivity, through all the steps (checked against finite
differences). Saves ``heat_equation.png``: the initial and final temperature.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tracejit
import tracejit.numpy as tnp


def laplacian(xp, u, h):
    """5-point Laplacian of the interior; zero on the boundary (which so stays at 0)."""
    inner = (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * u[1:-1, 1:-1]) / h**2
    column = xp.zeros((inner.shape[0], 1), inner.dtype)
    row = xp.zeros((1, inner.shape[1] + 2), inner.dtype)
    return xp.concatenate([row, xp.concatenate([column, inner, column], axis=1), row], axis=0)


def simulate(u0, alpha, steps: int, dt: float, h: float):
    def step(_, u):
        return u + dt * alpha * laplacian(tnp, u, h)
    return tracejit.fori_loop(0, steps, step, u0)


def simulate_numpy(u0, alpha, steps, dt, h):
    u = u0.copy()
    for _ in range(steps):
        u = u + dt * alpha * laplacian(np, u, h)
    return u


def centre_temperature(alpha, u0, steps, dt, h):
    u = simulate(u0, alpha, steps, dt, h)
    n = u0.shape[0]
    return u[n // 2, n // 2]


def main(n=101, t_end=0.02, alpha=1.0, plot="heat_equation.png", verbose=True) -> dict:
    h = 1.0 / (n - 1)
    dt = 0.2 * h * h / alpha  # below the explicit scheme's stability limit h^2 / (4 alpha)
    steps = int(round(t_end / dt))
    grid = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(grid, grid, indexing="ij")
    mode = np.sin(np.pi * X) * np.sin(np.pi * Y)
    hot_spot = np.exp(-((X - 0.3) ** 2 + (Y - 0.6) ** 2) / 0.005)
    u0 = mode + hot_spot
    u0[0, :] = u0[-1, :] = u0[:, 0] = u0[:, -1] = 0.0
    run = tracejit.compile(simulate, static_argnames=("steps", "dt", "h"))
    u = run(u0, alpha, steps=steps, dt=dt, h=h)
    run.wait(u0, alpha, steps=steps, dt=dt, h=h)  # (the first call may run on the interpreter)
    started = time.perf_counter()
    u = run(u0, alpha, steps=steps, dt=dt, h=h)
    compiled_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reference = simulate_numpy(u0, alpha, steps, dt, h)
    numpy_seconds = time.perf_counter() - started
    # One sine mode alone decays exactly as exp(-2 pi^2 alpha t) (up to the scheme's error).
    mode_end = run(mode, alpha, steps=steps, dt=dt, h=h)
    decay = np.exp(-2 * np.pi**2 * alpha * steps * dt)
    mode_error = float(np.abs(mode_end - decay * mode).max())
    # d(centre temperature)/d(alpha), through every step, vs central differences.
    dcentre = tracejit.compile(tracejit.grad(centre_temperature),
                               static_argnames=("steps", "dt", "h"))
    g = float(dcentre(alpha, u0, steps=steps, dt=dt, h=h))
    eps = 1e-5
    fd = (simulate_numpy(u0, alpha + eps, steps, dt, h)[n // 2, n // 2] -
          simulate_numpy(u0, alpha - eps, steps, dt, h)[n // 2, n // 2]) / (2 * eps)
    result = {"max_error_vs_numpy": float(np.abs(u - reference).max()),
              "mode_error": mode_error, "steps": steps, "dcentre_dalpha": g,
              "finite_difference": float(fd), "compiled_seconds": compiled_seconds,
              "numpy_seconds": numpy_seconds,
              "kernels": len(run.lower(u0, alpha, steps=steps, dt=dt, h=h).kernels())}
    if verbose:
        print(f"{n}x{n} grid, {steps} explicit steps to t = {steps * dt:.4f}")
        print(f"compiled fori_loop: {compiled_seconds * 1e3:.1f} ms, NumPy loop: "
              f"{numpy_seconds * 1e3:.1f} ms ({numpy_seconds / compiled_seconds:.1f}x)")
        print(f"max |compiled - NumPy| = {result['max_error_vs_numpy']:.2e}")
        print(f"single sine mode vs the exact decay exp(-2 pi^2 t): max error "
              f"{mode_error:.2e} (the scheme's discretisation error)")
        print(f"d u(centre) / d alpha = {g:.6f} (finite differences: {fd:.6f})")
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
        for ax, field, title in [(axes[0], u0, "t = 0"), (axes[1], u, f"t = {steps * dt:.3f}")]:
            image = ax.imshow(field.T, origin="lower", extent=(0, 1, 0, 1), cmap="inferno",
                              vmin=0, vmax=float(u0.max()))
            ax.set_title(f"temperature, {title}")
        fig.colorbar(image, ax=axes, shrink=0.85)
        fig.savefig(plot, dpi=110)
        plt.close(fig)
        if verbose:
            print(f"picture saved to {plot}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plot", default="heat_equation.png")
    r = main(plot=parser.parse_args().plot)
    assert r["max_error_vs_numpy"] < 1e-10
    assert abs(r["dcentre_dalpha"] - r["finite_difference"]) < 1e-5 * max(
        1.0, abs(r["finite_difference"]))
