#!/usr/bin/env bash
# The GPU path measured in one call: environment, `pytest -m gpu`, the step/forward/decoding
# benchmark (tinynmt-CuPy and PyTorch CUDA, then tinynmt-NumPy, same batches), one tutorial
# epoch on CUDA, greedy and beam-5 BLEU of test_2016_flickr on CUDA. Each step is time-boxed;
# a failure is recorded and the next step runs. Results: results.json and results.md in the
# output folder (and copied into $OUT when it is set). See benchmarks/README.md.
#
#   PYTHONPATH=. bash benchmarks/gpu_check.sh                  # on a GPU machine (< 8 min)
#   PYTHONPATH=. bash benchmarks/gpu_check.sh --dry-run        # anywhere: NumPy, tiny sizes (< 1 min)
#   ... --out DIR                                              # default benchmarks/out/gpu-<date>
set -u

DRY_RUN=0
DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out) DIR="$2"; shift ;;
        *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
PY=${PYTHON:-python}
export PYTHONPATH="${PYTHONPATH:-.}"
DIR=${DIR:-benchmarks/out/gpu-$(date +%Y%m%d-%H%M%S)$([ $DRY_RUN = 1 ] && echo -dry)}
mkdir -p "$DIR"
: > "$DIR/steps.tsv"

if [ $DRY_RUN = 1 ]; then    # NumPy in place of CuPy, tiny sizes: checks the script, not the GPU
    DEVICE=cpu
    GPU_BACKENDS=tinynmt-cpu
    BENCH_GPU=(--what step,forward --batches 1 --repeats 1)      # each flag path once, split
    BENCH_NUMPY=(--what decode --decode-sentences 2)             # between the two runs
    TRAIN=(--limit-train 200 --limit-eval 20 --hid-dim 32 --enc-layers 1 --dec-layers 1
           --enc-heads 2 --dec-heads 2 --enc-pf-dim 64 --dec-pf-dim 64)
    EVAL=(--max-len 8)
    TESTS=(tests/test_gpu.py)
else
    DEVICE=cuda
    GPU_BACKENDS=tinynmt-cuda,torch-cuda
    BENCH_GPU=(--batches 8 --repeats 5 --decode-sentences 500)
    BENCH_NUMPY=("${BENCH_GPU[@]}")                              # the same batches and sentences
    TRAIN=()
    EVAL=()
    TESTS=(tests/test_gpu.py tests)
fi

# results.json and results.md from what is there so far (into $OUT too): a run cut short
# from outside still leaves the steps it finished
report() {
    "$PY" benchmarks/gpu_check.py collect "$DIR" $([ $DRY_RUN = 1 ] && echo --dry-run) > /dev/null
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT" && cp "$DIR/results.json" "$DIR/results.md" "$OUT"/
    fi
}

# step NAME SECONDS COMMAND...: run it under `timeout`, log to NAME.log, note exit status and seconds
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=5 "$limit" "$@" > "$DIR/$name.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$*" >> "$DIR/steps.tsv"
    echo "   exit $rc, $((SECONDS - start)) s"
    report
}

step env 30 "$PY" benchmarks/gpu_check.py env "$DIR/env.json"
step pytest_gpu 100 "$PY" -m pytest -v -m gpu -p no:cacheprovider "${TESTS[@]}"
step bench_gpu 90 "$PY" benchmarks/bench.py --backends "$GPU_BACKENDS" "${BENCH_GPU[@]}" --out "$DIR/bench_gpu"
step bench_numpy 70 "$PY" benchmarks/bench.py --backends tinynmt-cpu "${BENCH_NUMPY[@]}" --out "$DIR/bench_numpy"
step train 140 "$PY" -m tinynmt.train --device "$DEVICE" --epochs 1 --out "$DIR/run" \
    --no-progress --no-plot --log-every 100 "${TRAIN[@]}"
step greedy 45 "$PY" -m tinynmt.evaluate --checkpoint "$DIR/run" --device "$DEVICE" --beam 1 "${EVAL[@]}"
step beam5 60 "$PY" -m tinynmt.evaluate --checkpoint "$DIR/run" --device "$DEVICE" --beam 5 "${EVAL[@]}"

cat "$DIR/results.md"
if [ -n "${OUT:-}" ]; then   # the logs too, not the checkpoints
    tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$DIR" --exclude='*.npz' . && echo "results and logs in $OUT"
fi
