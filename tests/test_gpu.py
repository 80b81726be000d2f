"""The GPU path against the CPU path: training steps, checkpoints both ways, --resume on
CUDA, Adam and clipping, greedy and beam decoding, scatter-add and dropout masks.

Every test is marked `gpu` and skips (with the reason) where CuPy or a CUDA device is
missing; `benchmarks/gpu_check.sh` runs them with `pytest -m gpu`.
"""
import numpy as np
import pytest

from tinynmt.backend import Generator, index_add, scatter_add_rows, to_device, to_numpy
from tinynmt.training.checkpoint import load_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX, PAD_IDX
from tinynmt.decoding import search
from tinynmt.nn import CrossEntropyLoss, Parameter, build_transformer
from tinynmt.optim import Adam, clip_grad_norm_
from tinynmt.training.run_folder import resume_config
from tinynmt.training.build import load_data
from tinynmt.training.loop import train
from tinynmt.training.step import train_step

from tiny_runs import TINY, records

pytestmark = pytest.mark.gpu

NO_DROPOUT = dict(TINY, enc_dropout=0.0, dec_dropout=0.0)
TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def data():
    return load_data(Config(**NO_DROPOUT))


def tiny_model(data, device):
    """The same weights (seed 1234) on `device`, dropout 0."""
    c = Config(**NO_DROPOUT)
    model = build_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX,
                              c.replace(enc_dropout=0.0, dec_dropout=0.0), seed=1234)
    return model.to(device)


def first_batches(batches, n):
    return [batches.make_batch(idx) for idx in batches.plan(0)[:n]]


def weights(model):
    return {name: to_numpy(array) for name, array in model.state_dict().items()}


def test_five_training_steps_on_cuda_match_the_cpu(data):
    batches = first_batches(data.train.batches(batch_size=32, shuffle=True, seed=1), 5)
    runs = {}
    for device in ("cpu", "cuda"):
        model = tiny_model(data, device).train()
        optimizer = Adam(model.parameters(), lr=5e-4)
        criterion = CrossEntropyLoss(ignore_index=PAD_IDX)
        losses = [float(to_numpy(train_step(model, criterion, optimizer, b.src, b.trg, 1.0)[0]))
                  for b in batches]
        runs[device] = losses, weights(model)
    np.testing.assert_allclose(runs["cuda"][0], runs["cpu"][0], **TOL)
    for name, cpu in runs["cpu"][1].items():
        if name.endswith("fc_k.bias"):
            # its gradient is zero in exact arithmetic (softmax ignores a constant added to a
            # query's energies), so both engines hold float noise that Adam turns into +-lr steps
            continue
        np.testing.assert_allclose(runs["cuda"][1][name], cpu, **TOL, err_msg=name)


def logits(model, batch):
    output, _ = model.eval()(batch.src, batch.trg[:, :-1])
    return to_numpy(output.data)


@pytest.mark.parametrize("saved_on, loaded_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_moves_between_devices(data, tmp_path, saved_on, loaded_on):
    train(Config(out=str(tmp_path), device=saved_on, **dict(NO_DROPOUT, epochs=1)))
    batch = first_batches(data.val.batches(batch_size=8), 1)[0]
    there = load_checkpoint(tmp_path / "last.npz", device=saved_on)
    here = load_checkpoint(tmp_path / "last.npz", device=loaded_on)
    assert here.model.device == loaded_on
    np.testing.assert_allclose(logits(here.model, batch), logits(there.model, batch), **TOL)
    assert here.optimizer_state["t"] == 5


def test_resume_on_cuda_continues_the_run(tmp_path):
    config = dict(NO_DROPOUT, epochs=2, device="cuda")
    train(Config(out=str(tmp_path / "full"), **config))
    first = train(Config(out=str(tmp_path / "cut"), **config), should_stop=lambda step: step == 3)
    assert first.status == "interrupted" and first.step == 3
    second = train(resume_config(tmp_path / "cut", device="cuda"))
    assert second.status == "finished" and second.step == 10
    full, cut = records(tmp_path / "full", "step"), records(tmp_path / "cut", "step")
    assert [r["step"] for r in cut] == list(range(1, 11))
    np.testing.assert_allclose([r["loss"] for r in cut], [r["loss"] for r in full], **TOL)


def test_adam_and_clipping_on_cuda_match_the_cpu(rng):
    shapes = [(7, 5), (5,), (3, 4, 2)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[(3 * rng.standard_normal(s)).astype(np.float32) for s in shapes] for _ in range(3)]
    results = {}
    for device in ("cpu", "cuda"):
        params = [Parameter(to_device(a.copy(), device)) for a in start]
        optimizer = Adam(params, lr=1e-2, weight_decay=0.01)
        norms = []
        for step_grads in grads:
            optimizer.zero_grad()
            for p, g in zip(params, step_grads):
                p.grad[...] = to_device(g, device)
            norms.append(float(to_numpy(clip_grad_norm_(params, 1.0))))
            optimizer.step()
        results[device] = norms, [to_numpy(p.data) for p in params], optimizer.state_dict()["m"]
    np.testing.assert_allclose(results["cuda"][0], results["cpu"][0], rtol=1e-5)
    for gpu, cpu in zip(results["cuda"][1], results["cpu"][1]):
        np.testing.assert_allclose(gpu, cpu, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(results["cuda"][2], results["cpu"][2], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("beam", [1, 5])
def test_decoding_on_cuda_gives_the_cpus_tokens(data, beam):
    src = first_batches(data.test.batches(batch_size=16), 1)[0].src
    hyps = {}
    for device in ("cpu", "cuda"):
        model = tiny_model(data, device)
        model.decoder.fc_out.bias.data[EOS_IDX] += 2      # sentences end at different steps
        hyps[device] = search(model, src, beam=beam, max_steps=12)    # greedy for beam 1
    assert hyps["cuda"].tokens == hyps["cpu"].tokens
    np.testing.assert_array_equal(hyps["cuda"].finished, hyps["cpu"].finished)
    np.testing.assert_allclose(hyps["cuda"].scores, hyps["cpu"].scores, **TOL)


def test_scatter_add_on_cuda_sums_repeated_rows_like_the_cpu(rng):
    ids = rng.integers(0, 6, 40)
    values = rng.standard_normal((40, 3)).astype(np.float32)
    cpu = scatter_add_rows(ids, values, 6)
    gpu = scatter_add_rows(to_device(ids, "cuda"), to_device(values, "cuda"), 6)
    np.testing.assert_allclose(to_numpy(gpu), cpu, atol=1e-5)
    out = to_device(np.zeros(6, dtype=np.float32), "cuda")
    index_add(out, to_device(np.array([1, 1, 4]), "cuda"), to_device(np.ones(3, dtype=np.float32), "cuda"))
    np.testing.assert_array_equal(to_numpy(out), [0, 2, 0, 0, 1, 0])


def test_dropout_masks_on_cuda_keep_one_minus_p_and_repeat_with_the_seed():
    masks = [Generator(7, "cuda").keep_mask((200, 500), 0.1) for _ in range(2)]
    assert masks[0].dtype == np.bool_ and masks[0].shape == (200, 500)
    assert abs(float(to_numpy(masks[0]).mean()) - 0.9) < 0.01
    np.testing.assert_array_equal(to_numpy(masks[0]), to_numpy(masks[1]))
