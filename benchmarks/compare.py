"""tracejit against the systems people use today, in one process: NumPy, a hand-written Numba
loop, numexpr, JAX ``jit``, PyTorch eager and ``torch.compile``, PyTensor with its Numba backend.

    python benchmarks/compare.py                      # the sizes of docs/benchmarks.md
    python benchmarks/compare.py --quick              # tiny sizes: checks agreement only
    python benchmarks/compare.py --markdown out.md --png out.png

Workloads: those of the fusion issue (``benchmarks/workloads.py``), the MLP training step, and
the transformer block of ``examples/transformer_block.py`` (forward and backward). The peers
come with ``pip install -e ".[bench]"``; one that is not installed is skipped (and named in the
notes), and a system that cannot express a workload (numexpr has no axis reductions) leaves its
cell empty. Every system's result is checked against NumPy's, within the tolerance of its
dtype, before it is timed: a peer that disagrees shows "disagrees" in its cell and is left out
of the ratios; the exit status is 1 only when tracejit itself disagrees. tracejit and the
hand-written Numba loops (the bar it is held to) are timed in turns, a batch of calls of each
per round, so that their ratio holds while the machine's speed drifts (timed one after the
other, minutes apart, their ratios had drifted by up to 1.8x). Prints a markdown
table of medians and ratios (tracejit's time over the other's: below 1 means tracejit is
faster), and the same for compile latency (the first call: tracing and compiling, with
tracejit's disk cache off, and torch.compile's and PyTensor's caches in a new folder);
``--png`` draws the run times as a bar chart.
"""
from __future__ import annotations

import argparse
import copy
import importlib.metadata
import math
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "examples")]

import tracejit  # noqa: E402
import tracejit.numpy as tnp  # noqa: E402
from tracejit.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten  # noqa: E402
import transformer_block as tb  # noqa: E402  (examples/transformer_block.py)
import workloads  # noqa: E402
from fused_workloads import (  # noqa: E402
    adam_numba_allocating, bias_sigmoid_numba, gelu_numba_vectorised, interleaved_medians,
    layernorm_numba, mlp_step_numba, softmax_numba, sum_of_squares_numba)

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
    # tiered=False: the first call compiles, as the peers' jit does (tiered first calls, which
    # answer from the interpreter while compiling, are measured in compile_latency.py).
    return {k: (None, tracejit.compile(f, tiered=False))
            for k, f in _functions(tnp, tracejit.grad).items()}


def numba_system():
    def mlp(params, x, y):
        out = mlp_step_numba(params["w1"], params["b1"], params["w2"], params["b2"], x, y,
                             F32(0.01))
        return dict(zip(("w1", "b1", "w2", "b2"), out))
    return {"GELU": (None, gelu_numba_vectorised), "bias + sigmoid": (None, bias_sigmoid_numba),
            "row softmax": (None, softmax_numba), "layernorm": (None, layernorm_numba),
            "sum of squares": (None, sum_of_squares_numba),
            # into new arrays, as tracejit's call without donation writes them (the in-place
            # loop against tracejit with donate_argnums: fused_workloads.py)
            "Adam update": (None, adam_numba_allocating),
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
    """PyTorch as its users write it: ``torch.nn.functional`` where it has the operation, and
    gradients by ``torch.autograd.grad`` around the loss; ``torch.compile`` compiles the
    function, or for the gradient steps the loss (its backward is compiled with it)."""
    import torch
    import torch.nn.functional as F

    def softmax(x):
        return torch.softmax(x, dim=1)

    def layernorm(x):
        return F.layer_norm(x, (x.shape[1],), eps=1e-5)

    def mlp_loss(params, x, y):
        h = torch.tanh(x @ params["w1"] + params["b1"])
        logp = torch.log_softmax(h @ params["w2"] + params["b2"], dim=1)
        return -(logp * y).sum() / x.shape[0]

    def block_loss(p, x):  # examples/transformer_block.py's block, in PyTorch
        batch, seq, d = x.shape
        h = F.layer_norm(x, (d,), p["ln1_g"], p["ln1_b"], eps=1e-5)
        q, k, v = (h @ p["w_qkv"]).split(d, dim=-1)
        q, k, v = (t.reshape(batch, seq, HEADS, d // HEADS).transpose(1, 2) for t in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + att.transpose(1, 2).reshape(batch, seq, d) @ p["w_o"]
        h = F.layer_norm(x, (d,), p["ln2_g"], p["ln2_b"], eps=1e-5)
        y = x + F.gelu(h @ p["w_1"] + p["b_1"], approximate="tanh") @ p["w_2"] + p["b_2"]
        return (y * y).mean()

    def grad(loss):
        def gradients(params, *rest):
            params = {k: v.detach().requires_grad_() for k, v in params.items()}
            return dict(zip(params, torch.autograd.grad(loss(params, *rest),
                                                        list(params.values()))))
        return gradients

    def mlp_step(loss):
        def step(params, x, y):
            g = grad(loss)(params, x, y)
            with torch.no_grad():
                return {k: p - 0.01 * g[k] for k, p in params.items()}
        return step

    w = workloads.make(torch, None)
    plain = {"GELU": w.gelu, "bias + sigmoid": w.bias_sigmoid, "row softmax": softmax,
             "layernorm": layernorm, "sum of squares": w.sum_of_squares, "Adam update": w.adam}

    def to_torch(args):
        return tree_map(lambda a: torch.from_numpy(np.asarray(a)) if np.ndim(a) else float(a),
                        args)

    def system(compiler):
        fns = {k: torch.no_grad()(compiler(f)) for k, f in plain.items()}
        fns["MLP step"] = mlp_step(compiler(mlp_loss))
        fns["transformer block fwd+bwd"] = grad(compiler(block_loss))
        return {k: (to_torch, f) for k, f in fns.items()}
    return {"PyTorch eager": system(lambda f: f), "torch.compile": system(torch.compile)}


def pytensor_system():
    """PyTensor graphs over inputs of static shapes (as JAX and tracejit specialise on shapes),
    compiled with ``mode="NUMBA"``."""
    import pytensor
    import pytensor.tensor as pt

    def symbolic(a):
        a = np.asarray(a)
        return pt.tensor(dtype=str(a.dtype), shape=a.shape)

    def grad(f):
        def g(params, *rest):
            cost = f(params, *rest)
            return dict(zip(params, pytensor.grad(cost, list(params.values()))))
        return g

    def block_loss(p, x):
        """examples/transformer_block.py's block, with the shapes read from the static types
        (``x.shape`` is symbolic in PyTensor, and the causal mask needs the sequence length)."""
        batch, seq, d = x.type.shape
        hd = d // HEADS
        h = tb.layernorm(pt, x, p["ln1_g"], p["ln1_b"])
        qkv = h @ p["w_qkv"]
        q, k, v = (qkv[..., i * d:(i + 1) * d].reshape((batch, seq, HEADS, hd))
                   .transpose((0, 2, 1, 3)) for i in range(3))
        scores = q @ k.transpose((0, 1, 3, 2)) / math.sqrt(hd)  # (float32, as in the example)
        scores = pt.where(np.tril(np.ones((seq, seq), dtype=bool)), scores, -1e9)
        att = pt.exp(scores - scores.max(axis=-1, keepdims=True))
        att = att / att.sum(axis=-1, keepdims=True)
        x = x + (att @ v).transpose((0, 2, 1, 3)).reshape((batch, seq, d)) @ p["w_o"]
        h = tb.layernorm(pt, x, p["ln2_g"], p["ln2_b"])
        y = x + tb.gelu(pt, h @ p["w_1"] + p["b_1"]) @ p["w_2"] + p["b_2"]
        return (y * y).mean()

    def build(f):
        cache = {}

        def run(*args):
            if "fn" not in cache:
                leaves, tree = tree_flatten(args)
                syms = [symbolic(a) for a in leaves]
                out_leaves, out_tree = tree_flatten(f(*tree_unflatten(tree, syms)))
                with warnings.catch_warnings():  # (about its C backend; Numba calls BLAS itself)
                    warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS")
                    fn = pytensor.function(syms, out_leaves, mode="NUMBA")
                cache["fn"] = (fn, out_tree)
            fn, out_tree = cache["fn"]
            return tree_unflatten(out_tree, fn(*tree_leaves(args)))
        return run
    fns = {**_functions(pt, grad), "transformer block fwd+bwd": grad(block_loss)}
    return {k: (None, build(f)) for k, f in fns.items()}


TIMED_IN_TURNS = ("tracejit", "Numba (by hand)")
SYSTEMS = [("tracejit", tracejit_system), ("NumPy", numpy_system),
           ("Numba (by hand)", numba_system), ("numexpr", numexpr_system),
           ("JAX jit", jax_system), ("PyTorch", torch_systems),
           ("PyTensor (Numba)", pytensor_system)]
# the peers that ``pip install -e ".[bench]"`` installs: system -> its distribution (and module)
PEERS = {"numexpr": "numexpr", "JAX jit": "jax", "PyTorch": "torch",
         "PyTensor (Numba)": "pytensor"}


def versions() -> str:
    """The versions of the peers this run imported, for the report."""
    found = [f"{dist} {importlib.metadata.version(dist)}" for dist in PEERS.values()
             if sys.modules.get(dist) is not None]
    return ", ".join(found) or "no peers installed"


def to_numpy(tree) -> list:
    return [np.asarray(getattr(a, "detach", lambda: a)()) for a in tree_leaves(tree)]


# (rtol, atol relative to the result's largest magnitude) by the dtype a result is compared in
TOLERANCE = {np.dtype(np.float16): (2e-2, 2e-3), np.dtype(np.float32): (2e-3, 2e-4),
             np.dtype(np.float64): (1e-9, 1e-11)}


def agree(got, expected) -> bool:
    """Whether ``got`` is NumPy's ``expected`` within the tolerance of the less precise of
    their dtypes (integers and booleans exactly)."""
    got, expected = to_numpy(got), to_numpy(expected)
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected):
        if g.shape != e.shape:
            return False
        rtol, atol = max(TOLERANCE.get(g.dtype, (0.0, 0.0)), TOLERANCE.get(e.dtype, (0.0, 0.0)))
        scale = max(1.0, float(np.abs(e).max(initial=0.0)))
        if not np.allclose(g, e, rtol=rtol, atol=atol * scale):
            return False
    return True


def cold_peer_caches(folder: str) -> None:
    """Point torch.compile's and PyTensor's on-disk caches at an empty ``folder``, so that the
    compile-latency table measures compiling, as it does for tracejit (its cache is off). Only
    takes effect before they are imported, so only in a run of its own."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(folder, "torchinductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(folder, "triton"))
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags:
        os.environ["PYTENSOR_FLAGS"] = ",".join(
            f for f in (flags, f"base_compiledir={os.path.join(folder, 'pytensor')}") if f)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes; check agreement only")
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--png", help="draw the run-time ratios to this PNG")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare-caches-") as folder:
        if not args.quick:
            cold_peer_caches(folder)
        return run(args)


def run(args) -> dict:
    rng = np.random.default_rng(0)
    cases = inputs(args.quick, rng)
    notes: list[str] = []
    numpy_fns = dict(SYSTEMS)["NumPy"]()
    reference = {k: numpy_fns[k][1](*v) for k, v in cases.items()}
    systems: dict = {}
    times: dict = {}
    latency: dict = {}
    disagrees: dict = {}
    # Each system is imported just before it runs, in SYSTEMS order (tracejit, NumPy and the
    # hand-written Numba first): with PyTorch and PyTensor imported, the Numba-compiled kernels
    # measured after them ran up to 7x slower (tracejit's and the hand-written alike; a GELU
    # over 10M float32 6.7 -> 40-48 ms), which would have measured the imports, not the kernels.
    # tracejit and the hand-written Numba loops (the bar of issue 17) are timed in turns.
    makers = dict(SYSTEMS)
    for name, make in SYSTEMS:
        if name in TIMED_IN_TURNS[1:]:
            continue  # (timed with tracejit)
        try:
            made = {name: make()} if name != "PyTorch" else make()
            if name == TIMED_IN_TURNS[0]:
                made.update({other: makers[other]() for other in TIMED_IN_TURNS[1:]
                             if other in makers})
        except ImportError as e:
            notes.append(f"{name}: not installed ({e.name}; pip install -e \".[bench]\")")
            continue
        for system, table in made.items():
            systems[system] = table
            times[system], latency[system], disagrees[system] = {}, {}, []
        _measure(made, cases, reference, times, latency, disagrees, notes, args.quick)
    text = report(systems, cases, times, latency, disagrees, notes, args.quick)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.png and not args.quick:
        chart(times, list(cases), args.png)
    return {"systems": list(systems), "disagreements": disagrees.get("tracejit", []),
            "peer_disagreements": {s: w for s, w in disagrees.items() if s != "tracejit" and w},
            "times": times, "latency": latency, "notes": notes}


def _measure(group, cases, reference, times, latency, disagrees, notes, quick):
    """Run every workload each system of ``group`` (system -> table) has: its first call
    (timed: compile latency), checked against NumPy's result, then, unless it disagrees, its
    median warm time; the systems of one group are timed in turns (``interleaved_medians``),
    so that their ratio holds on a machine whose speed drifts."""
    for workload, case in cases.items():
        timed = []
        for system, table in group.items():
            if workload not in table or table[workload][1] is None:
                continue
            prepare, fn = table[workload]
            prepared = _first_call(system, workload, prepare, fn, case, reference, latency,
                                   disagrees, notes)
            if prepared is not None:
                timed.append((system, fn, prepared))
        if timed and not quick:
            medians = interleaved_medians(*[(fn, args) for _, fn, args in timed], repeat=5,
                                          min_time=0.5)
            for (system, _, _), median in zip(timed, medians):
                times[system][workload] = median


def _first_call(system, workload, prepare, fn, case, reference, latency, disagrees, notes):
    """The first call of ``fn`` (timed into ``latency``), checked against NumPy's result; its
    prepared arguments, or None where it failed or disagreed (noted)."""
    case = copy.deepcopy(case)  # (some update their arguments in place)
    prepared = prepare(case) if prepare else case
    started = time.perf_counter()
    try:
        with tracejit.config.override(cache=False):
            result = fn(*prepared)
    except Exception as e:  # a system that cannot run a workload: noted, not fatal
        notes.append(f"{system} / {workload}: failed ({type(e).__name__}: "
                     f"{str(e).splitlines()[0][:120] if str(e) else ''})")
        return None
    latency[system][workload] = time.perf_counter() - started
    if not agree(result, reference[workload]):
        disagrees[system].append(workload)
        difference = describe_difference(result, reference[workload])
        notes.append(f"{system} / {workload}: {difference} (not timed, not in the ratios)")
        return None
    return prepared


def describe_difference(got, expected) -> str:
    """The largest difference from NumPy's result, in words."""
    got, expected = to_numpy(got), to_numpy(expected)
    if len(got) != len(expected):
        return f"{len(got)} arrays, NumPy's result has {len(expected)}"
    worst = ()
    for g, e in zip(got, expected):
        if g.shape != e.shape:
            return f"shape {g.shape}, NumPy's {e.shape}"
        err = np.abs(g.astype(np.float64) - e.astype(np.float64))
        if err.size and (not worst or err.max() > worst[0]):
            i = np.unravel_index(np.argmax(err), err.shape)
            worst = (err.max(), g[i], e[i], g.dtype)
    if not worst:
        return "differs from NumPy's result"
    return f"differs from NumPy's result: {worst[1]:.6g} against {worst[2]:.6g} ({worst[3]})"


def _table(title, systems, workloads_, values, disagrees, unit_scale=1e3, unit="ms") -> list[str]:
    """Markdown: one row per workload, a cell per system ("disagrees" where its result is not
    NumPy's), then tracejit's value over each other system's."""
    others = [s for s in systems if s != "tracejit"]
    lines = [f"### {title}", "",
             "| workload | tracejit | " + " | ".join(others) + " | " +
             " | ".join(f"/ {s}" for s in others) + " |",
             "|---" * (2 + 2 * len(others)) + "|"]
    for w in workloads_:
        mine = values["tracejit"].get(w) if w not in disagrees["tracejit"] else None
        cells = ["disagrees" if w in disagrees[s] else
                 f"{values[s][w] * unit_scale:.3g} {unit}" if w in values[s] else ""
                 for s in systems]
        ratios = [f"{mine / values[s][w]:.2f}" if mine and w in values[s] and
                  w not in disagrees[s] else "" for s in others]
        lines.append(f"| {w} | " + " | ".join(cells + ratios) + " |")
    return lines + [""]


def report(systems, cases, times, latency, disagrees, notes, quick) -> str:
    names = ["tracejit"] + [s for s in systems if s != "tracejit"]
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, NumPy {np.__version__}, "
             f"tracejit {tracejit.__version__}; {versions()}", ""]
    if not quick:
        lines += _table("Run time (median, warm)", names, list(cases), times, disagrees)
    lines += _table("Compile latency (first call: trace + compile + run; disk cache off)",
                    [n for n in names if n != "NumPy"], list(cases), latency, disagrees, 1.0,
                    "s")
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
    sys.exit(1 if result["disagreements"] else 0)  # tracejit's own; a peer's is in the table
