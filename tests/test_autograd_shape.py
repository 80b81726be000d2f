"""Shape primitives: reshape, transpose/permute, indexing, concatenate, stack."""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import Tensor, concatenate, gradcheck, stack
from tinynmt.backend import to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


def check(op, formula, arrays, leaf):
    """Forward equals the NumPy formula exactly (no arithmetic), and gradcheck passes."""
    out = op(*(leaf(a) for a in arrays))
    expected = formula(*arrays)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(to_numpy(out.data), expected)
    assert gradcheck(op, [leaf(a) for a in arrays])


# ----- reshape

@pytest.mark.parametrize("op, formula", [
    (lambda t: t.reshape(4, 3), lambda a: a.reshape(4, 3)),
    (lambda t: t.reshape((3, -1)), lambda a: a.reshape(3, -1)),
    (lambda t: t.view(-1), lambda a: a.reshape(-1)),
    (lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    (lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
], ids=["args", "tuple", "view_flat", "unsqueeze", "unsqueeze_last"])
def test_reshape(xp, rng, leaf, op, formula):
    check(op, formula, [rng.standard_normal((2, 2, 3))], leaf)


def test_reshape_error_names_both_shapes(xp, leaf):
    with pytest.raises(ValueError) as info:
        leaf(np.ones((2, 3))).reshape(4, 2)
    assert "(2, 3)" in str(info.value) and "(4, 2)" in str(info.value)


# ----- transpose / permute

@pytest.mark.parametrize("op, formula", [
    (lambda t: t.transpose(0, 2, 1, 3), lambda a: a.transpose(0, 2, 1, 3)),
    (lambda t: t.transpose(1, 2), lambda a: a.swapaxes(1, 2)),
    (lambda t: t.transpose(-1, -2), lambda a: a.swapaxes(-1, -2)),
    (lambda t: t.transpose(3, 0), lambda a: a.swapaxes(3, 0)),
    (lambda t: t.permute(2, 0, 3, 1), lambda a: a.transpose(2, 0, 3, 1)),
    (lambda t: t.permute((3, 2, 1, 0)), lambda a: a.transpose(3, 2, 1, 0)),
    (lambda t: t.permute(-1, 0, 1, 2), lambda a: a.transpose(3, 0, 1, 2)),
    (lambda t: t.T, lambda a: a.T),
], ids=["numpy_style", "swap_1_2", "swap_negative", "swap_3_0", "permute", "permute_tuple",
        "permute_negative", "T"])
def test_transpose_and_permute(xp, rng, leaf, op, formula):
    check(op, formula, [rng.standard_normal((2, 3, 2, 2))], leaf)


def test_transpose_of_a_matrix_swaps_its_axes(xp, rng, leaf):
    a = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(to_numpy(leaf(a).transpose(0, 1).data), a.T)   # PyTorch's rule


def test_permute_rejects_a_non_permutation(xp, leaf):
    with pytest.raises(ValueError, match="permutation"):
        leaf(np.ones((2, 3, 4))).permute(0, 0, 1)


# ----- getitem

INDEXES = {
    "slices": (slice(1, None), slice(None, None, 2)),
    "int": 1,
    "negative_int": -1,
    "ellipsis": (Ellipsis, 1),
    "new_axis": (slice(None), None, 0),
    "int_array_repeats": np.array([0, 2, 0, 0]),
    "int_list_repeats": [1, 1, 0],
    "array_and_slice": (np.array([2, 0, 2]), slice(1, 3)),
    "slice_and_array": (slice(None), np.array([3, 3, 0])),
    "two_arrays_repeated_pairs": (np.array([0, 1, 0, 0]), np.array([2, 3, 2, 2])),
    "int_and_array": (1, np.array([0, 0, 3])),
    "2d_int_array": np.array([[0, 1], [1, 1]]),
    "boolean_mask": np.array([True, False, True]),
}


def on_device(xp, index):
    """The index with its NumPy arrays moved to xp's device."""
    if isinstance(index, tuple):
        return tuple(on_device(xp, i) for i in index)
    return xp.asarray(index) if isinstance(index, np.ndarray) else index


@pytest.mark.parametrize("name", INDEXES)
def test_getitem(xp, rng, leaf, name):
    index = INDEXES[name]
    device_index = on_device(xp, index)
    check(lambda t: t[device_index], lambda a: a[index], [rng.standard_normal((3, 4))], leaf)


def test_getitem_repeated_indices_sum_their_gradients(xp, rng, leaf):
    rows, cols = np.array([0, 2, 0, 0, 1]), np.array([1, 3, 1, 1, 0])
    g = rng.standard_normal(5)
    x = leaf(rng.standard_normal((3, 4)))
    x[xp.asarray(rows), xp.asarray(cols)].backward(xp.asarray(g))
    expected = np.zeros((3, 4))
    np.add.at(expected, (rows, cols), g)
    np.testing.assert_allclose(to_numpy(x.grad), expected, rtol=1e-12)
    assert expected[0, 1] == pytest.approx(g[0] + g[2] + g[3])     # read three times


def test_getitem_with_a_tensor_index(xp, rng, leaf):
    a = rng.standard_normal((4, 2))
    ids = Tensor(xp.asarray(np.array([3, 3, 1])))
    x = leaf(a)
    out = x[ids]
    np.testing.assert_array_equal(to_numpy(out.data), a[[3, 3, 1]])
    out.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [[0, 0], [1, 1], [0, 0], [2, 2]])


# ----- concatenate and stack

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(xp, rng, leaf, axis):
    shapes = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 3), (2, 2)],
              -1: [(2, 2), (2, 1), (2, 1)]}
    arrays = [rng.standard_normal(s) for s in shapes[axis]]
    check(lambda *ts: concatenate(ts, axis=axis),
          lambda *arrs: np.concatenate(arrs, axis=axis), arrays, leaf)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack(xp, rng, leaf, axis):
    arrays = [rng.standard_normal((2, 3)) for _ in range(3)]
    check(lambda *ts: stack(ts, axis=axis), lambda *arrs: np.stack(arrs, axis=axis),
          arrays, leaf)


def test_concatenate_skips_inputs_without_grad(xp, rng, leaf):
    a, b = leaf(rng.standard_normal((2, 2))), leaf(rng.standard_normal((1, 2)), requires_grad=False)
    (concatenate([a, b]) * 3).sum().backward()
    np.testing.assert_array_equal(to_numpy(a.grad), np.full((2, 2), 3.0))
    assert b.grad is None


def test_shape_ops_gradcheck_random_directions(xp, rng, leaf):
    a, b = rng.standard_normal((6, 8, 8)), rng.standard_normal((6, 8, 8))
    op = lambda s, t: stack([s.transpose(1, 2), concatenate([s, t], axis=1)[:, 4:12]], axis=1) \
        .reshape(6, -1)[xp.asarray(np.array([5, 0, 5]))]
    assert gradcheck(op, [leaf(a), leaf(b)])
