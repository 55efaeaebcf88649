"""Per-example gradients of a 784-512-10 MLP at batch 256: tracejit's compiled
``vmap(grad(loss))`` against ``jax.jit(jax.vmap(jax.grad(loss)))`` and against a Python loop
over tracejit's own compiled ``grad``.

    python benchmarks/per_example_grads.py            # the full run (batch 256)
    python benchmarks/per_example_grads.py --quick    # a smoke run with tiny sizes

Prints the median time per batch of each system (after a warm-up call that compiles), and
checks that they agree. JAX is optional: its row is left out where it is not installed.
"""
from __future__ import annotations

import argparse
import importlib.util

import numpy as np

import tracejit
import tracejit.numpy as tnp
from fused_workloads import median_seconds  # (this folder's: the calls' median)


def make_loss(xp):
    def example_loss(params, x, y):
        """Softmax cross-entropy of one example."""
        h = xp.tanh(x @ params["w1"] + params["b1"])
        logits = h @ params["w2"] + params["b2"]
        z = logits - logits.max()
        return -((z - xp.log(xp.exp(z).sum())) * y).sum()
    return example_loss




def systems(loss):
    vmapped = tracejit.compile(tracejit.vmap(tracejit.grad(loss), in_axes=(None, 0, 0)),
                               tiered=False)
    one = tracejit.compile(tracejit.grad(loss), tiered=False)

    def loop(params, x, y):
        grads = [one(params, x[i], y[i]) for i in range(len(x))]
        return {k: np.stack([g[k] for g in grads]) for k in params}

    found = {"tracejit vmap(grad)": vmapped, "tracejit loop over grad": loop}
    if importlib.util.find_spec("jax"):
        import jax
        import jax.numpy as jnp
        jitted = jax.jit(jax.vmap(jax.grad(make_loss(jnp)), in_axes=(None, 0, 0)))

        def run_jax(params, x, y):
            return jax.block_until_ready(jitted(params, x, y))
        found["jax.jit(jax.vmap(jax.grad))"] = run_jax
    return found


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    d_in, hidden, batch, repeat = (784, 512, 256, args.repeat) if not args.quick else \
        (16, 8, 4, 2)
    rng = np.random.default_rng(0)
    params = {"w1": (rng.standard_normal((d_in, hidden)) / np.sqrt(d_in)).astype(np.float32),
              "b1": np.zeros(hidden, np.float32),
              "w2": (rng.standard_normal((hidden, 10)) / np.sqrt(hidden)).astype(np.float32),
              "b2": np.zeros(10, np.float32)}
    x = rng.standard_normal((batch, d_in)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    loss = make_loss(tnp)
    results, reference = {}, None
    print(f"per-example gradients, MLP {d_in}-{hidden}-10, batch {batch}, float32")
    for name, fn in systems(loss).items():
        seconds = median_seconds(fn, params, x, y, repeat=repeat, min_time=0.0)
        grads = {k: np.asarray(v) for k, v in fn(params, x, y).items()}
        if reference is None:
            reference = grads
        error = max(float(np.abs(grads[k] - reference[k]).max()) for k in reference)
        results[name] = seconds
        print(f"  {name:32s} {seconds * 1e3:9.2f} ms per batch   (max difference "
              f"{error:.1e})")
        assert error < 1e-3, f"{name} disagrees with tracejit vmap(grad)"
    return results


if __name__ == "__main__":
    main()
