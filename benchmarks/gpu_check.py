"""The Python half of benchmarks/gpu_check.sh: the environment record, and the results.

    python benchmarks/gpu_check.py env DIR/env.json      # GPU, driver, CUDA, CuPy, PyTorch
    python benchmarks/gpu_check.py collect DIR           # steps.tsv + logs -> results.json, results.md

`collect` reads what the driver left in DIR: steps.tsv (name, exit status, seconds, command
per step), each step's log, the benchmark's results.json files and the training run's
metrics.jsonl. A step that did not run, failed or timed out is listed as such, never dropped.
"""
import argparse
import json
import platform
import re
import subprocess
import time
from pathlib import Path

STEPS = ["env", "pytest_gpu", "bench_gpu", "bench_numpy", "train", "greedy", "beam5"]
TIMEOUT_CODES = (124, 137)   # timeout's own code, and SIGKILL after --kill-after


def _try(fn):
    """fn()'s value, or the error as one line of text."""
    try:
        return fn()
    except Exception as exc:   # any failure is a fact to record, not a crash
        return f"error: {type(exc).__name__}: {exc}".splitlines()[0]


def _nvidia_smi():
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _cupy():
    import cupy
    rt = cupy.cuda.runtime
    info = {"version": cupy.__version__}
    info["cuda_runtime"] = _try(rt.runtimeGetVersion)
    info["cuda_driver"] = _try(rt.driverGetVersion)
    info["devices"] = _try(rt.getDeviceCount)
    info["device0"] = _try(lambda: rt.getDeviceProperties(0)["name"].decode())
    return info


def _torch():
    import torch
    info = {"version": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available()}
    if info["cuda_available"]:
        info["device0"] = torch.cuda.get_device_name(0)
    return info


def environment():
    """What this machine has, each part recorded even when another is missing."""
    import numpy
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "nvidia_smi": _try(_nvidia_smi), "cupy": _try(_cupy), "torch": _try(_torch),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def read_steps(folder):
    """{name: {status, rc, seconds, command}} from steps.tsv; missing steps are 'not run'."""
    steps = {name: {"status": "not run"} for name in STEPS}
    tsv = folder / "steps.tsv"
    for line in (tsv.read_text().splitlines() if tsv.exists() else []):
        name, rc, seconds, command = line.split("\t", 3)
        rc = int(rc)
        status = "ok" if rc == 0 else "timeout" if rc in TIMEOUT_CODES else f"failed (exit {rc})"
        steps[name] = {"status": status, "rc": rc, "seconds": int(seconds), "command": command}
    return steps


def _log(folder, name):
    path = folder / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def pytest_counts(text):
    """Outcomes counted from `pytest -v` lines (so a run cut by its timeout still counts)."""
    counts = {k: len(re.findall(rf"^\S+::\S+ {k.upper()}", text, re.M))
              for k in ("passed", "failed", "skipped", "error")}
    counts["failed_tests"] = re.findall(r"^(\S+::\S+) (?:FAILED|ERROR)", text, re.M)
    return counts


def bench_backends(folder):
    path = folder / "results.json"
    return json.loads(path.read_text())["backends"] if path.exists() else {}


def train_summary(run_dir):
    """Epoch time, tokens/s and losses from the run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = {}
    for r in records:
        if r["kind"] == "epoch":
            out.update({k: r[k] for k in ("epoch_time_s", "tokens_per_s", "train_loss", "valid_loss")})
        if r["kind"] == "test":
            out.update(test_loss=r["test_loss"], test_bleu_greedy=r["bleu_greedy"])
    return out


def decode_summary(text):
    """BLEU and speed from `python -m tinynmt.evaluate` output."""
    out = {}
    loss = re.search(r"Test Loss: ([\d.]+)", text)
    if loss:
        out["test_loss"] = float(loss.group(1))
    bleu = re.search(r"^BLEU\S* = ([\d.]+)", text, re.M)          # BLEU|nrefs:1|... = 33.34 ...
    speed = re.search(r"([\d,]+) sentences in ([\d.]+) s, ([\d.]+) sentences/s", text)
    if bleu:
        out["bleu"] = float(bleu.group(1))
    if speed:
        out.update(sentences=int(speed.group(1).replace(",", "")), decode_s=float(speed.group(2)),
                   sentences_per_s=float(speed.group(3)))
    return out


def collect(folder, dry_run):
    """Gather every step's outcome into one dict (the content of results.json)."""
    steps = read_steps(folder)
    env_path = folder / "env.json"
    steps["env"]["environment"] = json.loads(env_path.read_text()) if env_path.exists() else {}
    steps["pytest_gpu"].update(pytest_counts(_log(folder, "pytest_gpu")))
    for name in ("bench_gpu", "bench_numpy"):
        steps[name]["backends"] = bench_backends(folder / name)
    steps["train"].update(train_summary(folder / "run"))
    for name in ("greedy", "beam5"):
        steps[name].update(decode_summary(_log(folder, name)))
    return {"dry_run": dry_run, "folder": str(folder), "date": time.strftime("%Y-%m-%d"), "steps": steps}


def _fmt(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def markdown(results):
    """The summary table, then the benchmark table, ready for RESULTS.md."""
    s = results["steps"]
    env = s["env"].get("environment", {})
    cupy, torch = ({} if not isinstance(env.get(k), dict) else env[k] for k in ("cupy", "torch"))
    title = "dry run (NumPy in place of CuPy, tiny sizes)" if results["dry_run"] else "GPU check"
    t, p = s["train"], s["pytest_gpu"]
    result = {
        "env": f"GPU {cupy.get('device0', 'none')}; CUDA driver {cupy.get('cuda_driver', '–')}, runtime "
               f"{cupy.get('cuda_runtime', '–')}; CuPy {cupy.get('version', '–')}; "
               f"PyTorch {torch.get('version', '–')} (CUDA {torch.get('cuda', '–')})",
        "pytest_gpu": f"{p.get('passed', 0)} passed, {p.get('failed', 0)} failed, {p.get('error', 0)} errors, "
                      f"{p.get('skipped', 0)} skipped" + (f"; failed: {', '.join(p['failed_tests'][:5])}"
                                                          if p.get("failed_tests") else ""),
        "bench_gpu": ", ".join(s["bench_gpu"].get("backends", {})) or "no results",
        "bench_numpy": ", ".join(s["bench_numpy"].get("backends", {})) or "no results",
        "train": f"epoch {_fmt(t.get('epoch_time_s'), '.1f')} s, {_fmt(t.get('tokens_per_s'), ',.0f')} target "
                 f"tokens/s, valid loss {_fmt(t.get('valid_loss'), '.3f')}, test BLEU (greedy) "
                 f"{_fmt(t.get('test_bleu_greedy'), '.2f')}",
    }
    for name in ("greedy", "beam5"):
        d = s[name]
        result[name] = (f"BLEU {_fmt(d.get('bleu'), '.2f')}, {_fmt(d.get('sentences'), ',')} sentences in "
                        f"{_fmt(d.get('decode_s'), '.2f')} s ({_fmt(d.get('sentences_per_s'), '.1f')}/s)")
    lines = [f"### {title}, {results['date']}", "", "| step | status | seconds | result |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {s[name]['status']} | {s[name].get('seconds', '–')} | {result[name]} |"
              for name in STEPS]
    lines += ["", "| backend | train step (s) | eval forward (s) | greedy (sent/s) | beam 5 (sent/s) |",
              "| --- | --- | --- | --- | --- |"]
    for name in ("bench_gpu", "bench_numpy"):
        for backend, e in s[name].get("backends", {}).items():
            lines.append(f"| {backend} | {_fmt(e.get('step_s'), '.4f')} | {_fmt(e.get('forward_s'), '.4f')} | "
                         f"{_fmt(e.get('greedy_sent_s'), '.1f')} | {_fmt(e.get('beam5_sent_s'), '.1f')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env").add_argument("path", type=Path)
    c = sub.add_parser("collect")
    c.add_argument("folder", type=Path)
    c.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "env":
        info = environment()
        args.path.write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info, indent=2))
        return 0
    results = collect(args.folder, args.dry_run)
    (args.folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.folder / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
