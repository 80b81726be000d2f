"""loss.png from metrics.jsonl, and no plot (but no failure) without matplotlib."""
import json
import sys

import pytest

from tinynmt.training.loss_plot import plot_losses, read_metrics

RECORDS = [{"kind": "start", "step": 0}, {"kind": "step", "step": 5, "loss": 6.0},
           {"kind": "step", "step": 10, "loss": 5.0},
           {"kind": "epoch", "step": 10, "train_loss": 5.5, "valid_loss": 5.2},
           {"kind": "test", "step": 10, "test_loss": 5.3, "split": "test_2016_flickr"}]


@pytest.fixture
def metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + '{"kind": "st')  # torn line
    return path


def test_read_metrics_skips_a_torn_line(metrics):
    assert read_metrics(metrics) == RECORDS


def test_plot_writes_a_png(metrics, tmp_path):
    pytest.importorskip("matplotlib")
    assert plot_losses(metrics, tmp_path / "loss.png") is True
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_without_matplotlib_nothing_is_drawn(metrics, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    assert plot_losses(metrics, tmp_path / "loss.png") is False
    assert not (tmp_path / "loss.png").exists()
