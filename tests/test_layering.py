"""The library never imports a program: importing it loads no module of tinynmt/programs/ and
none named like a command (python -m tinynmt.NAME; tinynmt.data is the data library, its command
is data/__main__.py)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ["tinynmt.autograd", "tinynmt.nn", "tinynmt.optim", "tinynmt.fast", "tinynmt.data",
           "tinynmt.decoding", "tinynmt.training.trainer", "tinynmt.training.loop",
           "tinynmt.training.build", "tinynmt.interop.explorer", "tinynmt.interop.weights"]


def test_the_library_loads_no_program_module():
    commands = {p.stem for p in (ROOT / "tinynmt" / "programs").glob("*.py")} - {"__init__", "cli", "data"}
    assert {"train", "translate", "prepare", "average", "plot"} <= commands
    code = ("import importlib, json, sys\n"
            f"for name in {LIBRARY!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(n for n in sys.modules if n.startswith('tinynmt'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    programs = [n for n in loaded if n.startswith("tinynmt.programs") or n.endswith("__main__")
                or n.rsplit(".", 1)[-1] in commands]
    assert programs == [], f"the library imports program modules: {programs}"
