#!/usr/bin/env bash
# Every CPU figure of RESULTS.md's newest section, one after another (about 85 minutes on 2 cores):
# step, data-parallel step, the tutorial run on 1 process and 2 ranks, decoding, validation
# split, the strong run. Run it on an otherwise idle machine. Logs in runs/measure/.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
U="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
L=runs/measure
mkdir -p $L
stamp() { echo "=== $(date +%T) $*" | tee -a $L/timeline.txt; }
stamp bench; $U python benchmarks/bench.py --batches 8 --repeats 5 --out $L/bench > $L/bench.log 2>&1
stamp bench_distributed; $U python benchmarks/bench_distributed.py --rounds 3 --out $L/dist > $L/dist.log 2>&1
stamp tutorial-1p; /usr/bin/time -v $U python -m tinynmt.train --out runs/tutorial-1p --no-progress > $L/tutorial-1p.log 2>&1
stamp eval-1p; for b in 1 5; do $U python -m tinynmt.evaluate --checkpoint runs/tutorial-1p --beam $b > $L/eval-1p-beam$b.log 2>&1; done
stamp valtime; $U mpiexec -n 2 python benchmarks/bench_validation.py runs/tutorial-1p/best.npz > $L/valtime.log 2>&1
stamp tutorial-2r; /usr/bin/time -v $U mpiexec -n 2 python -m tinynmt.train --out runs/tutorial-2r --no-progress > $L/tutorial-2r.log 2>&1
stamp eval-2r; for b in 1 5; do $U python -m tinynmt.evaluate --checkpoint runs/tutorial-2r --beam $b > $L/eval-2r-beam$b.log 2>&1; done
stamp strong; /usr/bin/time -v $U python -m tinynmt.train --preset strong --out runs/strong-1p --no-progress > $L/strong.log 2>&1
stamp eval-strong; $U python -m tinynmt.evaluate --checkpoint runs/strong-1p --beam 5 --lenpen 1.4 > $L/eval-strong-beam5.log 2>&1
stamp done
