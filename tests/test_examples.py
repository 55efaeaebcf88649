"""Every example runs, in a reduced size, and shows what it claims; ``benchmarks/compare.py
--quick`` gives NumPy's numbers on every installed system (the peers of the bench extra).

The examples are imported from ``examples/`` and their ``main`` called with small sizes (the
full runs are the scripts themselves, each under a minute on the CI machine).
"""
from __future__ import annotations

import importlib.util
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


def test_per_example_gradients_match_a_loop_and_learn():
    import per_example_gradients
    result = per_example_gradients.main(epochs=3, verbose=False)
    assert result["loop_error"] < 1e-4  # float32 per-example gradients, vmap vs a loop
    assert result["test_accuracy"] >= 0.85  # (15 epochs, the script's default, reach ~95%)
    assert 0 < result["clipped_share"] <= 1


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
    """Every peer installed here (the bench extra) runs every workload it expresses: none
    fails, tracejit agrees with NumPy everywhere, and the PyTorch columns include the
    transformer block, eager and compiled."""
    import compare
    result = compare.main(["--quick"])
    installed = [name for name, module in compare.PEERS.items() if importlib.util.find_spec(module)]
    expected = {"tracejit", "NumPy", "Numba (by hand)"} | set(installed)
    if "PyTorch" in installed:
        expected = (expected - {"PyTorch"}) | {"PyTorch eager", "torch.compile"}
    assert set(result["systems"]) == expected
    assert [n for n in result["notes"] if "failed" in n] == []
    assert result["disagreements"] == []
    # every peer agrees too at these sizes (in the full run numexpr's float32 sum of 10M
    # elements does not, and its cell says so): the adapters compute the same workloads
    assert result["peer_disagreements"] == {}
    workloads = set(compare.inputs(True, np.random.default_rng(0)))
    assert set(result["latency"]["tracejit"]) == workloads
    for system in expected & {"JAX jit", "PyTorch eager", "torch.compile", "PyTensor (Numba)"}:
        assert set(result["latency"][system]) == workloads, system
    assert "### Compile latency" in capsys.readouterr().out


def test_compare_shows_a_peers_disagreement_and_fails_only_on_its_own(monkeypatch, capsys):
    """A peer whose result is not NumPy's is "disagrees" in its cell, out of the ratios, and
    not a failure of the run; tracejit disagreeing is."""
    import compare
    x = np.linspace(-1.0, 1.0, 8, dtype=np.float32)
    gelu = compare.workloads.make(np, None).gelu
    wrong = {"GELU": (None, lambda x: gelu(x) * 1.01), "sum of squares": (None, np.sum)}
    monkeypatch.setattr(compare, "inputs", lambda quick, rng: {"GELU": (x,),
                                                               "sum of squares": (x,)})
    monkeypatch.setattr(compare, "SYSTEMS", [
        ("tracejit", lambda: {"GELU": (None, gelu), "sum of squares": (None, np.sum)}),
        ("NumPy", lambda: {"GELU": (None, gelu), "sum of squares": (None, lambda x: x @ x)}),
        ("a peer", lambda: wrong)])
    result = compare.main(["--quick"])
    assert result["disagreements"] == ["sum of squares"]  # tracejit's own
    assert result["peer_disagreements"] == {"a peer": ["GELU", "sum of squares"]}
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| GELU")]
    assert rows[0].split("|")[3:5] == [" disagrees ", "  "]  # its cell, and no ratio
    assert compare.agree([np.float32(1.0005)], [np.float32(1.0)])  # within float32's tolerance
    assert not compare.agree([np.float64(1.0005)], [np.float64(1.0)])
    assert not compare.agree([np.float32(1.01)], [np.float32(1.0)])


def test_gaussian_process(tmp_path):
    import gaussian_process
    plot = tmp_path / "gp.png"
    result = gaussian_process.main(n=25, steps=60, plot=str(plot), verbose=False)
    assert result["nlml"] < result["nlml_start"]
    assert result["gradient_error"] < 1e-5 * max(1.0, float(np.abs(result["grad"]).max()))
    if result["sklearn_log_marginal_likelihood"] is not None:  # (scikit-learn installed)
        assert result["sklearn_error"] < 1e-8
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
