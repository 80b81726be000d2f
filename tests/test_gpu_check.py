"""benchmarks/gpu_check.sh --dry-run walks every step (NumPy in place of CuPy, tiny sizes)
and writes results.json and results.md, also into $OUT: the GPU check itself is tested here."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["env", "pytest_gpu", "bench_gpu", "bench_numpy", "train", "greedy", "beam5"]


@pytest.mark.slow
def test_the_dry_run_records_every_step_and_writes_the_table(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(tmp_path / "run")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for folder in (tmp_path / "run", tmp_path / "out"):
        results = json.loads((folder / "results.json").read_text())
        assert results["dry_run"] is True
        assert list(results["steps"]) == STEPS
        statuses = {name: step["status"] for name, step in results["steps"].items()}
        assert statuses == dict.fromkeys(STEPS, "ok"), statuses
        table = (folder / "results.md").read_text()
        for name in STEPS:
            assert f"| {name} | ok |" in table
    steps = results["steps"]
    assert steps["train"]["valid_loss"] > 0 and steps["train"]["tokens_per_s"] > 0
    assert steps["greedy"]["sentences"] == steps["beam5"]["sentences"] == 1000
    assert "bleu" in steps["greedy"] and "bleu" in steps["beam5"]
    assert "tinynmt-numpy" in steps["bench_gpu"]["backends"]
    assert "| tinynmt-numpy |" in table
    assert (tmp_path / "out" / "gpu_check_logs.tar.gz").exists()


def test_a_failed_or_missing_step_is_recorded_not_dropped(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.gpu_check import collect, markdown
    (tmp_path / "steps.tsv").write_text("env\t0\t1\tpython env\npytest_gpu\t1\t5\tpytest\nbench_gpu\t124\t90\tbench\n")
    (tmp_path / "pytest_gpu.log").write_text("tests/test_gpu.py::test_a PASSED\ntests/test_gpu.py::test_b FAILED\n")
    results = collect(tmp_path, dry_run=False)
    statuses = {name: step["status"] for name, step in results["steps"].items()}
    assert statuses == {"env": "ok", "pytest_gpu": "failed (exit 1)", "bench_gpu": "timeout",
                        "bench_numpy": "not run", "train": "not run", "greedy": "not run", "beam5": "not run"}
    assert results["steps"]["pytest_gpu"]["failed_tests"] == ["tests/test_gpu.py::test_b"]
    table = markdown(results)
    assert "| bench_gpu | timeout | 90 |" in table and "| beam5 | not run | – |" in table
    assert "1 passed, 1 failed" in table
