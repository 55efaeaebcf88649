"""Compile latency: how long a new user waits, each measurement in a fresh process.

    python benchmarks/compile_latency.py [--quick] [--markdown] [--no-jax]

Workloads: the value and gradient of the MLP 784-256-10 loss (batch 128, float32), and of a
pre-norm transformer block (examples/transformer_block.py: 4 heads, causal attention, tanh-GELU
MLP) at batch 4 / 64 tokens / width 128 and at compare.py's batch 8 / 128 / 256.

For each, new Python processes, each with its own cache folder state:
- tiered, empty cache: the first result; then the caller keeps calling (as a training loop
  does) and the script notes when calls first ran a compiled kernel (with the entry as Python
  and the kernels not yet built on the interpreter: ``glue``), when every kernel was compiled,
  when calls reached compiled speed (from the first call whose next five have a median within
  1.1x of the steady time of ``tiered=False``'s compiled code, measured in its own process)
  and when the compiled code was in place (``compiled``: the compiled entry, the same code as
  ``tiered=False``, or, on machines with few cores, the entry left as Python around the
  compiled kernels where it costs little: ``tiers.py``);
- tiered=False, empty cache: the first call (trace, compile, run: what every call paid before
  tiers), with the stage breakdown of ``compile_stats()``;
- tiered, cache filled by an earlier process: the first result, and when the compiled code is
  loaded;
- JAX (if installed): ``jax.jit(jax.value_and_grad(loss))``'s first call, in its own process.
It also times ``import tracejit`` and the per-call overhead of a tiny compiled function.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")

COMMON = textwrap.dedent('''
    import json, sys, time
    started = time.perf_counter()
    import numpy as np
    WORKLOAD, MODE = sys.argv[1], sys.argv[2]
    sys.path[:0] = [sys.argv[3], sys.argv[4]]
    rng = np.random.default_rng(0)
    f32 = np.float32
    if WORKLOAD == "mlp":
        params = {"w1": (rng.normal(size=(784, 256)) * 0.05).astype(f32),
                  "b1": np.zeros(256, f32),
                  "w2": (rng.normal(size=(256, 10)) * 0.05).astype(f32), "b2": np.zeros(10, f32)}
        args = (params, rng.normal(size=(128, 784)).astype(f32),
                np.eye(10, dtype=f32)[rng.integers(0, 10, 128)])
    else:
        import transformer_block as tb
        batch, seq, d = {"block_small": (4, 64, 128), "block_compare": (8, 128, 256),
                         "block_quick": (2, 8, 16)}[WORKLOAD]
        args = (tb.init(rng, d, f32), rng.normal(size=(batch, seq, d)).astype(f32))
''')

TRACEJIT_CHILD = COMMON + textwrap.dedent('''
    import tracejit
    import tracejit.numpy as tnp
    imported = time.perf_counter() - started
    if WORKLOAD == "mlp":
        import workloads
        loss = workloads.make(tnp, tracejit.grad).mlp_loss
    else:
        loss = lambda p, x: tb.loss(tnp, p, x, 4)
    f = tracejit.compile(tracejit.value_and_grad(loss), tiered=MODE != "blocking")
    t0 = time.perf_counter()
    f(*args)
    first = time.perf_counter() - t0
    seen, per_tier, log = {}, {}, []
    calls = 1
    deadline = t0 + 300
    while MODE != "blocking" and time.perf_counter() < deadline:
        run = next(iter(f._entries.values())).run  # (the CompiledGraph after the switch)
        tier = getattr(run, "tier", "compiled")
        tier = "glue" if tier.startswith("compiled kernels") else tier.split(" ")[0]
        if tier not in seen:
            seen[tier] = time.perf_counter() - t0
        if tier == "compiled":
            break
        t = time.perf_counter()
        f(*args)
        per_tier.setdefault(tier, []).append(time.perf_counter() - t)
        log.append((t - t0, per_tier[tier][-1]))
        calls += 1
    times = []
    for _ in range(100):
        t = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t)
    steady = sorted(times)[len(times) // 2]
    # (for "compiled speed": the medians of each call's next five, against the noise)
    windows = [[round(at, 4), sorted(d for _, d in log[i:i + 5])[2]]
               for i, (at, _) in enumerate(log[:-4])]
    per_tier = {k: sorted(v)[len(v) // 2] for k, v in per_tier.items()}
    tiny = tracejit.compile(lambda x: x + 1, tiered=False)
    one = np.ones(4, f32)
    tiny(one)
    t = time.perf_counter()
    for _ in range(20000):
        tiny(one)
    per_call = (time.perf_counter() - t) / 20000
    stats = {k: v for k, v in f.compile_stats()[0].items() if k != "signature"}
    print(json.dumps({"import": imported, "first": first, "seen": seen, "calls": calls,
                      "per_tier": per_tier, "windows": windows,
                      "ready": str(getattr(next(iter(f._entries.values())).run, "tier", "")),
                      "steady": steady, "per_call": per_call,
                      "stats": stats}))
''')

JAX_CHILD = COMMON + textwrap.dedent('''
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_platforms", "cpu")
    if WORKLOAD == "mlp":
        import workloads
        loss = workloads.make(jnp, jax.grad).mlp_loss
    else:
        loss = lambda p, x: tb.loss(jnp, p, x, 4)
    f = jax.jit(jax.value_and_grad(loss))
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(100):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    print(json.dumps({"first": first, "steady": sorted(times)[len(times) // 2]}))
''')


def child(code: str, workload: str, mode: str, folder: str) -> dict | None:
    env = dict(os.environ, TRACEJIT_CACHE_DIR=folder)
    for name in ("NUMBA_OPT", "TRACEJIT_TIERED", "TRACEJIT_DEBUG"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", code, workload, mode, HERE, EXAMPLES],
                          env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        print(f"  ({workload} {mode} failed: {done.stderr.strip().splitlines()[-1:]})",
              file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def has_jax() -> bool:
    return subprocess.run([sys.executable, "-c", "import jax"], capture_output=True).returncode == 0


def measure(workload: str, jax: bool) -> dict:
    row = {}
    with tempfile.TemporaryDirectory() as folder:
        row["tiered_cold"] = child(TRACEJIT_CHILD, workload, "tiered", folder)
        row["tiered_warm"] = child(TRACEJIT_CHILD, workload, "tiered", folder)
    with tempfile.TemporaryDirectory() as folder:
        row["blocking_cold"] = child(TRACEJIT_CHILD, workload, "blocking", folder)
        row["blocking_warm"] = child(TRACEJIT_CHILD, workload, "blocking", folder)
    row["jax"] = child(JAX_CHILD, workload, "jax", "") if jax else None
    # Compiled speed: from the first call whose next five calls (a median) take at most 1.1x
    # the steady time of tiered=False's compiled code; else from the switch if the calls after
    # it (``steady``) do; else not in this run (None).
    cold = row["tiered_cold"]
    if cold:
        bar = 1.1 * (row["blocking_cold"] or cold)["steady"]
        before = next((at for at, median in cold.pop("windows") if median <= bar), None)
        after = cold["seen"].get("compiled") if cold["steady"] <= bar else None
        cold["speed_at"] = before if before is not None else after
    return row


NAMES = {"mlp": "MLP 784-256-10 value and gradient, batch 128",
         "block_small": "transformer block fwd+bwd, batch 4, 64 tokens, width 128",
         "block_compare": "transformer block fwd+bwd, batch 8, 128 tokens, width 256 "
                          "(compare.py)",
         "block_quick": "transformer block fwd+bwd, batch 2, 8 tokens, width 16"}


def _s(value) -> str:
    return "" if value is None else f"{value:.2f} s" if value >= 0.1 else f"{value * 1e3:.0f} ms"


def report(rows: dict, markdown: bool) -> None:
    header = ["workload", "first result (tiered)", "first compiled kernel",
              "all kernels compiled", "compiled speed (<= 1.1x)", "compiled code in place",
              "tiered=False first call", "cache filled: first result",
              "cache filled: compiled", "JAX first call"]
    lines = []
    for workload, row in rows.items():
        cold, warm = row["tiered_cold"] or {}, row["tiered_warm"] or {}
        blocking, jax = row["blocking_cold"] or {}, row["jax"] or {}
        lines.append([NAMES[workload], _s(cold.get("first")),
                      _s(cold.get("seen", {}).get("glue")),
                      _s(cold.get("stats", {}).get("kernels_after")),
                      _s(cold.get("speed_at")) or "not reached",
                      _s(cold.get("seen", {}).get("compiled")), _s(blocking.get("first")),
                      _s(warm.get("first")), _s(warm.get("seen", {}).get("compiled")),
                      _s(jax.get("first")) or "not installed"])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        for line in lines:
            print("\n".join(f"  {h:34} {v}" for h, v in zip(header, line)) + "\n")
    print("\nStage breakdown (ms; tiered=False cold / tiered cold, whose numba is the worker's):")
    for workload, row in rows.items():
        for mode in ("blocking_cold", "tiered_cold"):
            stats = (row[mode] or {}).get("stats", {})
            print(f"  {workload} {mode}: " + ", ".join(
                f"{k} {v * 1e3:.0f}" for k, v in stats.items() if isinstance(v, float)))
    any_row = next((r["tiered_cold"] for r in rows.values() if r["tiered_cold"]), None)
    if any_row:
        print(f"\nimport tracejit: {any_row['import']:.3f} s; per call, tiny compiled "
              f"function: {any_row['per_call'] * 1e6:.2f} us")
    print("Call times (medians, ms): " + "; ".join(
        f"{w}: on the interpreter {_ms(r['tiered_cold'], 'interpreter')}, compiled kernels "
        f"with the entry as Python {_ms(r['tiered_cold'], 'glue')}, compiled "
        f"{_ms(r['tiered_cold'])} (tiered=False {_ms(r['blocking_cold'])}), JAX {_ms(r['jax'])}"
        for w, r in rows.items()))


def _ms(result, tier=None) -> str:
    if not result:
        return "-"
    value = result["steady"] if tier is None else result.get("per_tier", {}).get(tier)
    return "-" if value is None else f"{value * 1e3:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny transformer block only")
    parser.add_argument("--markdown", action="store_true", help="a table for docs/")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--workloads", default="mlp,block_small,block_compare")
    options = parser.parse_args()
    workloads = ["block_quick"] if options.quick else options.workloads.split(",")
    jax = not options.no_jax and has_jax()
    rows = {w: measure(w, jax) for w in workloads}
    report(rows, options.markdown)
    failed = [w for w, r in rows.items() if not all(r[m] for m in r if m != "jax")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
