"""tracejit against the systems people use today, in one process: NumPy, a hand-written Numba
loop, numexpr, JAX ``jit``, PyTorch eager and ``torch.compile``, PyTensor with its Numba backend.

    python benchmarks/compare.py                      # the sizes of docs/benchmarks.md
    python benchmarks/compare.py --quick              # tiny sizes: checks agreement only
    python benchmarks/compare.py --markdown out.md --png out.png

Workloads: those of the fusion issue (``benchmarks/workloads.py``), the MLP training step, and
the transformer block of ``examples/transformer_block.py`` (forward and backward). Systems that
are not installed are skipped, and a system that cannot express a workload (numexpr has no
axis reductions) leaves its cell empty. Every system's result is checked against NumPy's
before it is timed. Prints a markdown table of medians and ratios (tracejit's time over the
other's: below 1 means tracejit is faster), and the same for compile latency (the first call:
tracing and compiling, with tracejit's disk cache off); ``--png`` draws the run times as a bar
chart.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "examples")]

import tracejit  # noqa: E402
import tracejit.numpy as tnp  # noqa: E402
import transformer_block as tb  # noqa: E402  (examples/transformer_block.py)
import workloads  # noqa: E402
from fused_workloads import (adam_numba, bias_sigmoid_numba, gelu_numba_vectorised,  # noqa: E402
                             layernorm_numba, median_seconds, mlp_step_numba, softmax_numba,
                             sum_of_squares_numba)

F32 = np.float32
HEADS = 4


def inputs(quick: bool, rng) -> dict:
    """name -> arguments (NumPy, float32)."""
    n = 1000 if quick else 10_000_000
    rows, cols = (16, 32) if quick else (4096, 4096)
    ln_rows, ln_cols = (16, 32) if quick else (8192, 1024)
    batch, d_in, d_h, d_out = (16, 32, 16, 4) if quick else (256, 784, 512, 10)
    tb_shape = (2, 8, 16) if quick else (8, 128, 256)
    normal = lambda *shape: rng.standard_normal(shape).astype(F32)  # noqa: E731
    params = {"w1": normal(d_in, d_h) * 0.05, "b1": np.zeros(d_h, F32),
              "w2": normal(d_h, d_out) * 0.05, "b2": np.zeros(d_out, F32)}
    return {
        "GELU": (normal(n),),
        "bias + sigmoid": (normal(rows, cols), normal(rows, 1), normal(cols)),
        "row softmax": (normal(rows, cols),),
        "layernorm": (normal(ln_rows, ln_cols),),
        "sum of squares": (normal(n),),
        "Adam update": (normal(n), normal(n), normal(n), np.abs(normal(n)), F32(1e-3), F32(3.0)),
        "MLP step": (params, normal(batch, d_in),
                     np.eye(d_out, dtype=F32)[rng.integers(0, d_out, batch)]),
        "transformer block fwd+bwd": (tb.init(rng, tb_shape[2], F32), normal(*tb_shape)),
    }


def _transformer(xp, grad):
    return grad(lambda p, x: tb.loss(xp, p, x, HEADS)) if grad else None


def _functions(xp, grad) -> dict:
    w = workloads.make(xp, grad)
    return {"GELU": w.gelu, "bias + sigmoid": w.bias_sigmoid, "row softmax": w.softmax,
            "layernorm": w.layernorm, "sum of squares": w.sum_of_squares,
            "Adam update": w.adam, "MLP step": w.mlp_step,
            "transformer block fwd+bwd": _transformer(xp, grad)}


# --- the systems: each gives name -> (prepare(args) -> prepared args, run(*prepared)) --------
def numpy_system():
    """NumPy itself; for the steps that need a gradient, tracejit's reference interpreter
    (each primitive run by NumPy) does the differentiation."""
    fns = _functions(tnp, tracejit.grad)  # tnp is NumPy outside a trace
    return {k: (None, f) for k, f in fns.items()}


def tracejit_system():
    return {k: (None, tracejit.compile(f)) for k, f in _functions(tnp, tracejit.grad).items()}


def numba_system():
    def mlp(params, x, y):
        out = mlp_step_numba(params["w1"], params["b1"], params["w2"], params["b2"], x, y,
                             F32(0.01))
        return dict(zip(("w1", "b1", "w2", "b2"), out))
    return {"GELU": (None, gelu_numba_vectorised), "bias + sigmoid": (None, bias_sigmoid_numba),
            "row softmax": (None, softmax_numba), "layernorm": (None, layernorm_numba),
            "sum of squares": (None, sum_of_squares_numba),
            "Adam update": (None, lambda p, g, m, v, lr, t: (adam_numba(p, g, m, v, lr, t),
                                                             (p, m, v))[1]),  # in place
            "MLP step": (None, mlp)}


def numexpr_system():
    import numexpr as ne
    gelu = "0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x ** 3)))"

    def adam(p, g, m, v, lr, t):
        m = ne.evaluate("0.9 * m + 0.1 * g")
        v = ne.evaluate("0.999 * v + 0.001 * g * g")
        b1, b2 = F32(1 - 0.9 ** t), F32(1 - 0.999 ** t)  # noqa: F841 (read by numexpr)
        return ne.evaluate("p - lr * (m / b1) / (sqrt(v / b2) + 1e-8)"), m, v
    return {"GELU": (None, lambda x: ne.evaluate(gelu)),
            "bias + sigmoid": (None, lambda a, b, c: ne.evaluate("(a * b + c) / (1 + exp(-a))")),
            "sum of squares": (None, lambda x: ne.evaluate("sum(x * x)")),
            "Adam update": (None, adam)}


def jax_system():
    import jax
    import jax.numpy as jnp

    def jitted(f):
        compiled = jax.jit(f)
        return lambda *a: jax.block_until_ready(compiled(*a))
    return {k: (jax.device_put, jitted(f)) for k, f in _functions(jnp, jax.grad).items()}


def torch_systems():
    import torch

    def softmax(x):
        return torch.softmax(x, dim=1)

    def layernorm(x):
        return torch.nn.functional.layer_norm(x, (x.shape[1],), eps=1e-5)

    def mlp_step(params, x, y):
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
        h = torch.tanh(x @ params["w1"] + params["b1"])
        logp = torch.log_softmax(h @ params["w2"] + params["b2"], dim=1)
        loss = -(logp * y).sum() / x.shape[0]
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            return {k: p - 0.01 * g for (k, p), g in zip(params.items(), grads)}
    w = workloads.make(torch, None)
    fns = {"GELU": w.gelu, "bias + sigmoid": w.bias_sigmoid, "row softmax": softmax,
           "layernorm": layernorm, "sum of squares": w.sum_of_squares, "Adam update": w.adam,
           "MLP step": mlp_step}

    def to_torch(args):
        return tracejit.pytree.tree_map(
            lambda a: torch.from_numpy(np.asarray(a)) if np.ndim(a) else float(a), args)
    eager = {k: (to_torch, torch.no_grad()(f) if k != "MLP step" else f)
             for k, f in fns.items()}
    compiled = {k: (to_torch, torch.compile(f)) for k, f in fns.items()}
    return {"PyTorch eager": eager, "torch.compile": compiled}


def pytensor_system():
    import pytensor
    import pytensor.tensor as pt

    def symbolic(a):
        a = np.asarray(a)
        return pt.tensor(dtype=str(a.dtype), shape=tuple(1 if n == 1 else None for n in a.shape))

    def grad(f):
        def g(params, *rest):
            cost = f(params, *rest)
            return dict(zip(params, pytensor.grad(cost, list(params.values()))))
        return g

    def build(f):
        cache = {}

        def run(*args):
            if "fn" not in cache:
                leaves, tree = tracejit.pytree.flatten(args)
                syms = [symbolic(a) for a in leaves]
                out = f(*tracejit.pytree.unflatten(tree, syms))
                out_leaves, out_tree = tracejit.pytree.flatten(out)
                cache["fn"] = (pytensor.function(syms, out_leaves, mode="NUMBA"), out_tree)
            fn, out_tree = cache["fn"]
            return tracejit.pytree.unflatten(out_tree, fn(*tracejit.pytree.flatten(args)[0]))
        return run
    return {k: (None, build(f)) for k, f in _functions(pt, grad).items()}


SYSTEMS = [("tracejit", tracejit_system), ("NumPy", numpy_system), ("Numba (by hand)", numba_system),
           ("numexpr", numexpr_system), ("JAX jit", jax_system), ("PyTorch", torch_systems),
           ("PyTensor (Numba)", pytensor_system)]


def available_systems(notes: list) -> dict:
    found = {}
    for name, make in SYSTEMS:
        try:
            made = make()
        except ImportError as e:
            notes.append(f"{name}: not installed ({e.name})")
            continue
        found.update(made if name == "PyTorch" else {name: made})
    return found


def to_numpy(tree):
    return [np.asarray(getattr(a, "detach", lambda: a)()) for a in tracejit.pytree.flatten(
        tree if not isinstance(tree, np.ndarray) else [tree])[0]]


def agree(got, expected) -> bool:
    got, expected = to_numpy(got), to_numpy(expected)
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected):
        scale = max(1.0, float(np.abs(e).max(initial=0.0)))
        if g.shape != e.shape or not np.allclose(g, e, rtol=2e-3, atol=2e-4 * scale):
            return False
    return True


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; check agreement only")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--png", help="draw the run-time ratios to this PNG")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    cases = inputs(args.quick, rng)
    notes: list[str] = []
    systems = available_systems(notes)
    reference = {k: systems["NumPy"][k][1](*v) for k, v in cases.items()}
    times: dict = {s: {} for s in systems}
    latency: dict = {s: {} for s in systems}
    disagreements = []
    for system, table in systems.items():
        for workload, case in cases.items():
            if workload not in table or table[workload][1] is None:
                continue
            prepare, fn = table[workload]
            case = copy.deepcopy(case)  # (some update their arguments in place)
            prepared = prepare(case) if prepare else case
            started = time.perf_counter()
            try:
                with tracejit.config.override(cache=False):
                    result = fn(*prepared)
            except Exception as e:  # a system that cannot run a workload: noted, not fatal
                notes.append(f"{system} / {workload}: failed ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120]})")
                continue
            latency[system][workload] = time.perf_counter() - started
            if not agree(result, reference[workload]):
                disagreements.append(f"{system} / {workload}")
                notes.append(f"{system} / {workload}: result differs from NumPy's (not timed)")
                continue
            if not args.quick:
                times[system][workload] = median_seconds(fn, *prepared, repeat=5, min_time=0.5)
    text = report(systems, cases, times, latency, notes, args.quick)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.png and not args.quick:
        chart(times, list(cases), args.png)
    return {"systems": list(systems), "disagreements": disagreements, "times": times,
            "latency": latency, "notes": notes}


def _table(title, systems, workloads_, values, unit_scale=1e3, unit="ms") -> list[str]:
    others = [s for s in systems if s != "tracejit"]
    lines = [f"### {title}", "",
             "| workload | tracejit | " + " | ".join(others) + " | " +
             " | ".join(f"/ {s}" for s in others) + " |",
             "|---" * (2 + 2 * len(others)) + "|"]
    for w in workloads_:
        mine = values["tracejit"].get(w)
        cells = [f"{values[s][w] * unit_scale:.3g} {unit}" if w in values[s] else ""
                 for s in systems]
        ratios = [f"{mine / values[s][w]:.2f}" if mine and w in values[s] else ""
                  for s in others]
        lines.append(f"| {w} | " + " | ".join(cells + ratios) + " |")
    return lines + [""]


def report(systems, cases, times, latency, notes, quick) -> str:
    names = ["tracejit"] + [s for s in systems if s != "tracejit"]
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, NumPy {np.__version__}, "
             f"tracejit {tracejit.__version__}", ""]
    if not quick:
        lines += _table("Run time (median, warm)", names, list(cases), times)
    lines += _table("Compile latency (first call: trace + compile + run; disk cache off)",
                    [n for n in names if n != "NumPy"], list(cases), latency, 1.0, "s")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def chart(times, workloads_, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    systems = [s for s in times if s != "NumPy" and times[s]]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / max(1, len(systems))
    for k, s in enumerate(systems):
        xs = [i + k * width for i, w in enumerate(workloads_) if w in times[s] and
              w in times["NumPy"]]
        ys = [times["NumPy"][w] / times[s][w] for w in workloads_ if w in times[s] and
              w in times["NumPy"]]
        ax.bar(xs, ys, width, label=s)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("speed-up over NumPy (higher is better)")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(workloads_))])
    ax.set_xticklabels(workloads_, rotation=20, ha="right")
    ax.legend(fontsize=8, ncol=len(systems), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result["disagreements"] else 0)
