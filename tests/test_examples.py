"""Every example runs, in a reduced size, and shows what it claims; ``benchmarks/compare.py
--quick`` gives NumPy's numbers on every installed system.

The examples are imported from ``examples/`` and their ``main`` called with small sizes (the
full runs are the scripts themselves, each under a minute on the CI machine).
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path[:0] = [os.path.join(ROOT, "examples"), os.path.join(ROOT, "benchmarks")]


def test_quickstart(capsys):
    import quickstart
    speedup = quickstart.main(size=200_000)
    out = capsys.readouterr().out
    assert "graph loss(" in out and "OK: compiled results match NumPy" in out
    assert speedup > 0  # (a timing: printed, never asserted against a bound)


def test_mlp_digits_learns(tmp_path):
    import mlp_digits
    plot = tmp_path / "loss.png"
    result = mlp_digits.main(epochs=4, plot=str(plot), verbose=False)
    assert result["test_accuracy"] >= 0.90  # (30 epochs, the script's default, reach >= 95%)
    assert result["losses"][-1] < result["losses"][0] / 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transformer_block_matches_numpy_and_finite_differences():
    import transformer_block
    result = transformer_block.main(batch=2, seq=8, d=16, heads=2, verbose=False)
    assert result["forward_max_error"] < 1e-5
    assert result["loss_error"] < 1e-6
    assert result["gradient_max_relative_error"] < 1e-5


def test_heat_equation(tmp_path):
    import heat_equation
    plot = tmp_path / "heat.png"
    result = heat_equation.main(n=21, t_end=0.02, plot=str(plot), verbose=False)
    assert result["max_error_vs_numpy"] < 1e-12
    assert result["mode_error"] < 5e-3  # the scheme's discretisation error on a 21x21 grid
    assert result["dcentre_dalpha"] == pytest.approx(result["finite_difference"], rel=1e-5)
    assert result["kernels"] >= 1 and plot.stat().st_size > 0


def test_logistic_regression_converges_quadratically():
    import logistic_regression
    result = logistic_regression.main(n=300, d=4, verbose=False)
    norms = result["grad_norms"]
    assert norms[-1] < 1e-12 and len(norms) <= 10
    assert result["hessian_error"] < 1e-12
    if result["sklearn_difference"] is not None:
        assert result["sklearn_difference"] < 1e-5


def test_compare_quick_agrees_with_numpy_on_every_installed_system(capsys):
    import compare
    result = compare.main(["--quick"])
    assert {"tracejit", "NumPy", "Numba (by hand)"} <= set(result["systems"])
    assert result["disagreements"] == []
    assert set(result["latency"]["tracejit"]) == set(compare.inputs(True, np.random.default_rng(0)))
    assert "### Compile latency" in capsys.readouterr().out
