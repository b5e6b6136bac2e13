"""simulate(): recorded arrays, their shapes, determinism, the saved file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import data_of, resnet_spec

from dmftc.errors import DmftcError
from dmftc.simulate import Simulation, build_network, simulate, sweep

T, P = 5, 8


@pytest.fixture(scope="module")
def full(mlp):
    return simulate(mlp, seeds=3, data=data_of(mlp))


def test_mlp_shapes_full(full):
    assert isinstance(full, Simulation) and full.steps == T
    shapes = {k: v.shape for k, v in full.arrays.items()}
    kernel = (3, T + 1, P, T + 1, P)
    assert shapes == {"loss": (3, T + 1), "f": (3, T + 1, P), "f0": (3, P),
                      "Phi1": kernel, "Phi2": kernel, "G1": kernel, "G2": kernel}
    assert all(v.dtype == np.float32 for v in full.arrays.values())
    np.testing.assert_array_equal(full.f0, full.f[:, 0])
    assert full.sizes == {"D": 16, "L": 2, "N": 64, "P": 8}


def test_loss_is_half_mean_square_error(full, mlp):
    _, y = data_of(mlp)
    np.testing.assert_allclose(full.loss, 0.5 * np.mean((full.f - y) ** 2, axis=-1), rtol=1e-5)
    assert np.all(np.diff(full.loss.mean(0)) < 0)  # a small step: the loss goes down


def test_kernels_are_symmetric_gram_matrices(full):
    for name in ("Phi1", "G2"):
        K = full.order[name].reshape(3, (T + 1) * P, (T + 1) * P)
        np.testing.assert_allclose(K, K.transpose(0, 2, 1), rtol=1e-5, atol=1e-6)
        assert np.linalg.eigvalsh(K.astype(np.float64)).min() > -1e-4


def test_diag_is_the_equal_time_part_of_full(full, mlp):
    diag = simulate(mlp, seeds=3, record="diag", data=data_of(mlp))
    np.testing.assert_array_equal(diag.loss, full.loss)
    t = np.arange(T + 1)
    for name in ("Phi1", "Phi2", "G1", "G2"):
        assert diag.order[name].shape == (3, T + 1, P, P)
        np.testing.assert_allclose(diag.order[name], full.order[name][:, t, :, t].transpose(1, 0, 2, 3),
                                   rtol=1e-5, atol=1e-7)
    none = simulate(mlp, seeds=3, record="none", data=data_of(mlp))
    assert set(none.arrays) == {"loss", "f", "f0"}
    np.testing.assert_array_equal(none.f, full.f)


def test_same_seed_same_arrays_and_networks_independent_of_ensemble_size(full, mlp):
    again = simulate(mlp, seeds=3, data=data_of(mlp))
    for k, v in full.arrays.items():
        np.testing.assert_array_equal(again.arrays[k], v, err_msg=k)
    two = simulate(mlp, seeds=2, record="none", data=data_of(mlp))
    np.testing.assert_allclose(two.f, full.f[:2], rtol=1e-6, atol=1e-7)
    other = simulate(mlp, seeds=2, record="none", seed=1, data=data_of(mlp))
    assert not np.allclose(other.f0, full.f0[:2])


def test_seeds_beyond_the_memory_budget_run_in_chunks_that_are_the_same_networks(full, mlp, monkeypatch):
    """Chunks of seeds (`budget`: initial weights of one network here) concatenate to the one run."""
    from dmftc.simulate import train

    one_network = 4 * sum(int(np.prod(p.shape)) for p in build_network(mlp, None, data_of(mlp)[0].shape).params.values())
    chunks, run_chunk = [], train._simulate
    monkeypatch.setattr(train, "_simulate", lambda *a: chunks.append(a[4]) or run_chunk(*a))  # a[4]: its seeds
    parts = simulate(mlp, seeds=3, data=data_of(mlp), budget=one_network, displacement=True)
    assert chunks == [1, 1, 1]
    monkeypatch.undo()
    whole = simulate(mlp, seeds=3, data=data_of(mlp), displacement=True)
    assert parts.seeds == 3 and parts.arrays.keys() == whole.arrays.keys()
    # the same weights; batches of another size may sum in another order (float32 rounding)
    for k, v in whole.arrays.items():
        np.testing.assert_allclose(parts.arrays[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    assert not np.allclose(parts.f[1:], whole.f[:-1], atol=1e-3)  # and not a shifted or repeated draw


def test_float64_agrees_with_float32(full, mlp):
    x64 = simulate(mlp, seeds=3, dtype="float64", data=data_of(mlp))
    assert x64.loss.dtype == np.float64 and x64.order["G1"].dtype == np.float64
    np.testing.assert_allclose(x64.f, full.f, rtol=1e-3, atol=1e-5)


def test_transformer_shapes(transformer):
    sim = simulate(dataclasses.replace(transformer, training=dataclasses.replace(transformer.training, steps=2)),
                   seeds=2, data=data_of(transformer))
    M = 8 * 4  # P * S (sample, token) sites
    assert sim.order["H1"].shape == (2, 3, M, 3, M) and sim.order["G5"].shape == (2, 3, M, 3, M)
    # the stream at the input and after each of the 2 blocks: the DMFT's positions 1, 3, 5 (each block
    # adds twice to the stream, attention then MLP)
    assert set(sim.order) == {"H1", "H3", "H5", "G1", "G3", "G5", "logits"}
    assert sim.order["logits"].shape == (2, 3, 2, 4, 8, 4, 4)  # (seeds, T+1, L_attn, H, P, S, S)
    assert np.all(np.isfinite(sim.loss)) and sim.loss[:, -1].mean() < sim.loss[:, 0].mean()


def test_residual_network_streams():
    spec = resnet_spec(L_=3, steps=2)
    sim = simulate(spec, seeds=2, record="diag", data=data_of(spec))
    assert set(sim.order) == {f"{k}{p}" for k in ("H", "Phi", "G") for p in range(1, 5)}
    assert sim.order["G4"].shape == (2, 3, 8, 8)
    # Phi<p> = <relu(h) relu(h)> of the stream's H<p> = <h h>: 0 <= relu(h)^2 <= h^2 per unit, and
    # about half of it at init where h is symmetric
    for p in range(1, 5):
        act, stream = (np.diagonal(sim.order[f"{k}{p}"], axis1=-2, axis2=-1) for k in ("Phi", "H"))
        assert np.all(act >= 0) and np.all(act <= stream + 1e-6)
        np.testing.assert_allclose(act[:, 0].mean(), stream[:, 0].mean() / 2, rtol=0.2)


@pytest.mark.parametrize("alpha_L", [0.5, 1.0])
def test_backward_fields_are_normalised_by_the_readout_scale_at_every_depth(alpha_L):
    """g = (df/dh) / s_hat, s_hat = m_readout * std_readout (the DMFT's normalisation): the readout's depth
    factors L^(1/2 - alpha_L), L^(alpha_L - 1/2) cancel, so at init the top of the stream has
    G(0, 0) = <relu'(h)^2 (w / std)^2> ~ 1/2 at every depth (by the multiplier alone: ~ L^(2 alpha_L - 1) / 2)."""
    tops = []
    for depth in (2, 16):
        spec = resnet_spec(alpha_L=alpha_L, N_=256, L_=depth, steps=0)
        sim = simulate(spec, seeds=2, record="diag", data=data_of(spec))
        tops.append(np.mean(np.diagonal(sim.order[f"G{depth + 1}"][:, 0], axis1=-2, axis2=-1)))
    assert all(0.35 < g < 0.65 for g in tops), tops


def test_save_writes_every_array_atomically(full, tmp_path):
    path = full.save(tmp_path / "out")
    assert path.name == "simulation.npz" and sorted(p.name for p in path.parent.iterdir()) == ["simulation.npz"]
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(full.arrays) | {"t", "axes", "meta"}
        for k, v in full.arrays.items():
            np.testing.assert_array_equal(npz[k], v)


def test_default_data_come_from_the_spec(mlp):
    sims = sweep(mlp, [{"N": 32}, {"N": 40}], seeds=1, record="none")
    explicit = simulate(mlp, {"N": 40}, seeds=1, record="none", data=data_of(mlp))
    np.testing.assert_array_equal(sims[1].f, explicit.f)
    assert [s.sizes["N"] for s in sims] == [32, 40]


@pytest.mark.parametrize("option, message", [
    ({"record": "some"}, "record='some' is not one of 'full', 'diag', 'none'"),
    ({"dtype": "float16"}, "dtype='float16' is not one of"),
    ({"seeds": 0}, "seeds=0 must be at least 1"),
])
def test_bad_options_name_the_allowed_values(mlp, option, message):
    with pytest.raises(DmftcError, match=message):
        simulate(mlp, data=data_of(mlp), **option)


@pytest.mark.slow
def test_same_arrays_across_processes_and_hash_seeds(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.path[:0] = ['.', 'tests/simulate']\n"
            "from conftest import mlp_spec, data_of\nfrom dmftc.simulate import simulate\n"
            "s = mlp_spec(); simulate(s, seeds=2, data=data_of(s)).save(sys.argv[1])\n")
    for h in ("1", "2"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / h)], check=True, cwd=root,
                       env={"PYTHONHASHSEED": h, "PATH": "/usr/bin:/bin"})
    with np.load(tmp_path / "1" / "simulation.npz") as a, np.load(tmp_path / "2" / "simulation.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
