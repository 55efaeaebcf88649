#!/usr/bin/env bash
# The checks a session runs when a GPU machine is lent (one prepared run, see docs/cuda.md):
# the CUDA tests on the real device (no simulator), benchmarks/gpu.py, then the fuzzer on the
# device (docs/testing.md) for FUZZ_SECONDS each way. Logs go to $OUT (the device tool's output
# folder) or ./gpu-logs. EXTRA, if set, is run last (e.g. a long numba_cpu fuzz on many cores).
set -u
out=${OUT:-gpu-logs}; mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NUMBA_ENABLE_CUDASIM=0
export TRACEJIT_CACHE_DIR=$(mktemp -d)
{
  git rev-parse HEAD 2>/dev/null; date -u; nvidia-smi -L
  python3 -c "import sys, numpy, numba, numba_cuda, llvmlite; print(sys.version); print('numpy', numpy.__version__, 'numba', numba.__version__, 'numba-cuda', numba_cuda.__version__, 'llvmlite', llvmlite.__version__)"
  python3 -c "from numba import cuda; d = cuda.get_current_device(); print(d.name, d.compute_capability, d.MULTIPROCESSOR_COUNT)"
} 2>&1 | tee "$out/env.txt"
timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -n "${WORKERS:-8}" -p no:cacheprovider \
  --durations=15 tests/test_cuda.py tests/test_fuzz.py -k "cuda" 2>&1 | tee "$out/cuda_tests.log"
echo "tests exit: ${PIPESTATUS[0]}"
if [ -z "${SKIP_BENCH:-}" ]; then
  timeout "${BENCH_TIMEOUT:-180}" python3 benchmarks/gpu.py 2>&1 | tee "$out/gpu_bench.log"
  echo "bench exit: ${PIPESTATUS[0]}"
fi
jobs=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
for mode in "" "--grad"; do
  python3 -m tracejit.testing.fuzz --backend numba_cuda $mode --n 2000 --jobs "$jobs" \
    --seconds "${FUZZ_SECONDS:-60}" 2>&1 | tee -a "$out/fuzz_cuda.log"
done
if [ -n "${EXTRA:-}" ]; then bash -c "$EXTRA" 2>&1 | tee "$out/extra.log"; fi
