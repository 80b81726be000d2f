"""The CuPy path calls only what CuPy has, proved without a GPU.

`import cupy` works on a machine with no GPU or driver (only allocating fails). So the
training step, clipping, Adam, a checkpoint round trip and greedy/beam decoding run here on
NumPy arrays, with every `get_array_module` (and `backend.cupy_module`) answering a
recording stand-in for the cupy module: it runs each call on NumPy and notes its name
(`zeros`, `add.at`, `random.RandomState.random_sample`...), its keyword names and its
dtypes. Each name must then exist in the installed CuPy and accept those keywords; the
dtypes must be float32, int64 or bool; and no Python number may be copied to the device
(`asarray(0.5)`) in the training step.

The library's `xp is np` branches take their CuPy side under the stand-in (it is not
numpy), so those are exercised too. Array methods (`.astype`, `.sum`...) are not recorded.
"""
import functools
import inspect
import re
import sys
import types
from collections import defaultdict

import numpy as np
import pytest

import tinynmt.programs.evaluate  # noqa: F401  (every module that imports get_array_module, loaded)
import tinynmt.training.trainer  # noqa: F401
from tinynmt import backend
from tinynmt.backend import BackendError
from tinynmt.training.checkpoint import load_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX
from tinynmt.decoding import Ensemble, beam_search, greedy_search, reference_log_probs
from tinynmt.training.build import load_data
from tinynmt.training.trainer import Trainer

cupy = pytest.importorskip("cupy", reason="CuPy is not installed: nothing to check the calls against")

ALLOWED_DTYPES = {"float32", "int64", "bool"}
TINY = dict(hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=32,
            dec_pf_dim=32, batch_size=16, limit_train=48, limit_eval=8, device="cuda",
            plot=False, progress=False)


class FakeRandomState:
    """cupy.random.RandomState's methods that tinynmt uses, on NumPy."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def random_sample(self, size=None, dtype=float):
        return self.rng.random(size, dtype=dtype)


class CallLog:
    """What the code asked of the array module: names, keyword names, dtypes, scalar uploads."""

    def __init__(self):
        self.keywords = defaultdict(set)   # name -> keyword names used with it
        self.dtypes = set()
        self.scalar_uploads = []           # names called on a Python number (a host-to-device copy)

    def record(self, name, args, kwargs):
        self.keywords[name].update(kwargs)
        if "dtype" in kwargs and kwargs["dtype"] is not None:
            self.dtypes.add(np.dtype(kwargs["dtype"]).name)
        if name in ("asarray", "array") and args and isinstance(args[0], (int, float)):
            self.scalar_uploads.append(f"{name}({args[0]!r})")

    def wrap(self, value, name):
        """Callables and namespaces come back recorded; dtypes and constants as they are."""
        if name == "random.RandomState":                 # a class, but its calls are recorded
            return Recorded(FakeRandomState, name, self)
        if isinstance(value, (type, np.dtype)) or not (callable(value) or isinstance(value, types.ModuleType)):
            self.keywords[name]                     # noted: it must exist in cupy too
            return value
        return Recorded(value, name, self)


class Recorded:
    """A NumPy function, ufunc or module under its CuPy name: calls run on NumPy and are logged."""

    def __init__(self, target, name, log):
        self._target, self._name, self._log = target, name, log

    def __getattr__(self, attr):
        name = f"{self._name}.{attr}" if self._name else attr
        return self._log.wrap(getattr(self._target, attr), name)

    def __call__(self, *args, **kwargs):
        self._log.record(self._name, args, kwargs)
        result = self._target(*args, **kwargs)
        if isinstance(result, FakeRandomState):     # its methods are recorded too
            return Recorded(result, self._name, self._log)
        return result


@pytest.fixture
def log(monkeypatch):
    """Every tinynmt module's get_array_module, and backend.cupy_module, give the recorder."""
    calls = CallLog()
    namespace = Recorded(np, "", calls)
    original = backend.get_array_module
    for name, module in list(sys.modules.items()):
        if name.startswith("tinynmt") and getattr(module, "get_array_module", None) is original:
            monkeypatch.setattr(module, "get_array_module", lambda *arrays: namespace)
    monkeypatch.setattr(backend, "cupy_module", lambda: namespace)
    return calls


def cupy_object(name):
    """cupy.<name>, following dots (add.at, random.RandomState.random_sample)."""
    return functools.reduce(getattr, name.split("."), cupy)


def keyword_names(obj):
    """The keyword names obj accepts, or None for any (**kwargs, or no readable signature).

    Cython functions and ufuncs have no inspect signature; their docstring's first line
    does (`add(x1, x2, /, out=None, *, casting='same_kind', dtype=None)`)."""
    try:
        params = inspect.signature(obj).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params}
    except (TypeError, ValueError):
        match = re.match(r"[\w.]+\((.*)\)", (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else "")
        if not match:
            return None
        parts = [p.strip().replace("\\", "") for p in match.group(1).split(",")]
        if any(p.startswith("**") for p in parts):
            return None
        return {p.split("=")[0].strip() for p in parts if p not in ("/", "*")}


def assert_cupy_has(log):
    missing, bad_keywords = [], []
    for name, keywords in sorted(log.keywords.items()):
        try:
            obj = cupy_object(name)
        except AttributeError:
            missing.append(name)
            continue
        accepted = keyword_names(obj) if callable(obj) else set()
        if keywords and accepted is not None and not keywords <= accepted:
            bad_keywords.append(f"{name}({', '.join(sorted(keywords - accepted))}=...)")
    assert not missing, f"not in CuPy {cupy.__version__}: {missing}"
    assert not bad_keywords, f"keywords CuPy {cupy.__version__} does not take: {bad_keywords}"
    assert log.dtypes <= ALLOWED_DTYPES, f"dtypes beyond float32/int64/bool: {log.dtypes - ALLOWED_DTYPES}"


@pytest.fixture(scope="module")
def data():
    return load_data(Config(**TINY))


def test_training_clipping_adam_and_a_checkpoint_round_trip_call_only_cupy(log, data, tmp_path):
    trainer = Trainer.create(Config(out=str(tmp_path), **TINY), data)
    batch = trainer.train_batches.plan(0)[0]             # the sentence ids of one batch
    trainer.step(batch)
    assert log.scalar_uploads == [], "a training step copied Python numbers to the device"
    trainer.step(batch)
    trainer.sync()
    trainer.evaluate(trainer.valid_batches)
    trainer.save(tmp_path / "last.npz")
    resumed = Trainer.resume(trainer.config, data, load_checkpoint(tmp_path / "last.npz", device="cuda"))
    resumed.step(batch)
    resumed.sync()
    assert resumed.counters.step == 3
    for name in ("add.at", "random.RandomState", "random.RandomState.random_sample", "vdot", "sqrt"):
        assert name in log.keywords, f"{name} was not called: the recorder missed the CuPy path"
    assert_cupy_has(log)


def test_greedy_and_beam_decoding_call_only_cupy(log, data, tmp_path):
    model = Trainer.create(Config(out=str(tmp_path), **TINY), data).model
    model.decoder.fc_out.bias.data[EOS_IDX] += 2     # some sentences end early: the batch shrinks
    batches = data.test.batches(batch_size=8)
    src = batches.make_batch(batches.plan(0)[0]).src
    greedy = greedy_search(model, src, max_steps=10)
    beam = beam_search(model, src, beam=3, max_steps=10)
    assert len(greedy) == len(beam) == src.shape[0]
    assert len({len(t) for t in greedy.tokens}) > 1, "every sentence ended at the same step"
    assert log.scalar_uploads == [], "decoding copied Python numbers to the device at each step"
    for name in ("take_along_axis", "argpartition", "flatnonzero", "arange"):
        assert name in log.keywords, f"{name} was not called: the recorder missed the CuPy path"
    assert_cupy_has(log)


def test_ensemble_nbest_and_reference_scores_call_only_cupy(log, data, tmp_path):
    model = Trainer.create(Config(out=str(tmp_path), **TINY), data).model
    other = Trainer.create(Config(out=str(tmp_path), **{**TINY, "seed": 7}), data).model
    batches = data.test.batches(batch_size=8)
    batch = batches.make_batch(batches.plan(0)[0])
    ensemble = Ensemble([model, other])
    greedy = greedy_search(ensemble, batch.src, max_steps=10)
    beam = beam_search(ensemble, batch.src, beam=3, max_steps=10, nbest=2)
    assert len(beam) == 2 * len(greedy) == 2 * batch.src.shape[0]
    assert reference_log_probs(ensemble, batch.src, batch.trg).shape == batch.trg[:, 1:].shape
    assert log.scalar_uploads == [], "decoding copied Python numbers to the device at each step"
    for name in ("stack", "exp", "log", "take_along_axis"):
        assert name in log.keywords, f"{name} was not called: the recorder missed the CuPy path"
    assert_cupy_has(log)


def test_the_check_catches_a_numpy_only_name_a_foreign_keyword_and_float64(log):
    """The check can fail: each kind of mistake, made on purpose, is reported."""
    namespace = backend.cupy_module()
    namespace.asarray(np.ones(2, dtype=np.float32))
    assert_cupy_has(log)
    namespace.busday_count("2026-01-01", "2026-02-01")            # NumPy only
    with pytest.raises(AssertionError, match="not in CuPy.*busday_count"):
        assert_cupy_has(log)
    del log.keywords["busday_count"]
    namespace.sum(np.ones(3, dtype=np.float32), where=np.ones(3, dtype=bool))
    with pytest.raises(AssertionError, match=r"sum\(where=\.\.\.\)"):
        assert_cupy_has(log)
    del log.keywords["sum"]
    namespace.zeros(2, dtype=np.float64)
    with pytest.raises(AssertionError, match="float64"):
        assert_cupy_has(log)
    namespace.asarray(0.5)
    assert log.scalar_uploads == ["asarray(0.5)"]


def test_cupy_module_without_a_usable_gpu_is_a_one_line_backend_error():
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        count = 0
    if count:
        pytest.skip("a CUDA device is usable here")
    with pytest.raises(BackendError, match="CuPy is installed but") as err:
        backend.cupy_module()
    assert "\n" not in str(err.value)
