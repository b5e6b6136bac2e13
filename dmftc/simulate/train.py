"""Ensembles of finite networks trained by full-batch GD: `simulate` and `sweep`.

One compiled program per size: the seeds a `lax.map` over `vmap`ped batches, the steps a
`lax.scan`, the two-time kernels an einsum after the scan. Sizes are a Python loop (each
compiles anew); other values of the hyperparameters at the same sizes reuse the program
(`programs`).
Initial weights are drawn on the host (`Network.init`): network i of an ensemble does not
depend on how many seeds run beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from types import MappingProxyType, SimpleNamespace
from typing import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..budget import check_simulation
from ..divergence import check_run, targets_scale
from ..errors import DmftcError
from ..spec.types import Spec
from .data import Data, spec_data
from ..spec import load_test
from .network import Network, build_network
from .forward import apply
from .observe import check_record, kernels_full, observe, zero_taps
from .programs import compiled
from .result import Simulation
from ..training import Setup, error_weights, loss_weights, setup as training_setup, step

DTYPES = ("float32", "float64")


def simulate(spec: Spec, sizes: Mapping[str, int] | None = None, seeds: int = 8, *,
             record: str = "full", dtype: str = "float32", seed: int = 0,
             data: Data | None = None, displacement: bool = False, first: int = 0,
             budget: int = 2 * 2**30, progress: bool = False) -> Simulation:
    """Train `seeds` finite networks of `spec` at `sizes` (overrides of spec.sizes) and record them.

    loss[t], f[t] and the order parameters are measured with the weights after t updates,
    t = 0..spec.training.steps. `record` is "full" (two-time kernels), "diag" (t = s) or
    "none" (loss and f only); `dtype` "float32" or "float64"; `data` (X, y) replaces
    `dmftc.spec.load_data(spec)`. With `displacement`, also each weight copy's relative
    displacement ||W(t) - W(0)||_F / ||W(0)||_F (`Simulation.displacement`). The networks are
    numbers first..first+seeds-1 of the ensemble `seed` (`Network.init`), so an ensemble can be
    simulated in chunks that together equal one run: seeds whose initial weights exceed
    `budget` bytes run in such chunks one after the other (the device holds a few copies of
    the weights per network: N = 1024, L = 16, 128 seeds at once needs more than 24 GiB).
    With `progress` (the CLI), a line per chunk on stderr with the remaining time; 16 or more seeds then
    run in at least 2 and up to 4 chunks (the same networks, so the same numbers) to have one to time.
    """
    check_record(record)
    check_simulation(spec, sizes, seeds, record=record, dtype=dtype, budget=budget,  # before any work
                     displacement=displacement, data=data)
    X, y = spec_data(spec, data)
    net = build_network(spec, sizes, X.shape)
    test = load_test(spec) if data is None else None
    st = training_setup(spec, n_test=0 if test is None else len(test[1]), sizes=net.sizes)
    if test is not None:  # held-out points ride along: they carry no error signal (Omega = 0)
        X, y = np.concatenate([X, test[0]]), np.concatenate([y, test[1]])
    per_network = np.dtype(dtype).itemsize * weight_count(net)
    chunks = -(-check_seeds(seeds) // max(1, budget // per_network))
    if progress:
        chunks = max(chunks, min(4, seeds // 8))
    bounds = np.linspace(first, first + seeds, chunks + 1).round().astype(int)
    sizes = ", ".join(f"{k} = {v}" for k, v in net.sizes.items())
    from ..crosscheck.progress import bar as progress_bar

    parts = []
    with progress_bar(seeds, f"simulate {spec.name} ({sizes})", enabled=progress, unit="networks") as bar:
        for a, b in zip(bounds[:-1], bounds[1:]):
            parts.append(_simulate(spec, net, X, y, int(b - a), record, dtype, seed, displacement, int(a), st))
            bar.update(int(b - a))
    sim = _concatenate(parts)
    check_run(f"training the finite networks of {spec.name} ({sizes})", sim.loss, {"f": sim.f, **sim.order},
              "Remedy: lower the learning rate (training.lr); at a stable step size the networks' loss falls.",
              scale=targets_scale(y))
    return sim


def _concatenate(parts: list[Simulation]) -> Simulation:
    """Chunks of one ensemble (consecutive network numbers) as one Simulation; timings add up."""
    if len(parts) == 1:
        return parts[0]

    def cat(arrays) -> np.ndarray:
        return np.concatenate(list(arrays))

    def by_name(field: str) -> MappingProxyType:
        return MappingProxyType({k: cat(getattr(s, field)[k] for s in parts) for k in getattr(parts[0], field)})

    return dataclasses.replace(
        parts[0], seeds=sum(s.seeds for s in parts), loss=cat(s.loss for s in parts), f=cat(s.f for s in parts),
        f0=cat(s.f0 for s in parts), order=by_name("order"), displacement=by_name("displacement"),
        losses=by_name("losses"),
        timings=MappingProxyType({k: sum(s.timings[k] for s in parts) for k in parts[0].timings}))


def _simulate(spec: Spec, net: Network, X, y, seeds: int, record: str, dtype: str, seed: int,
              displacement: bool, first: int, st: Setup) -> Simulation:
    """One chunk of `simulate`: networks first..first+seeds-1 in one program run."""
    with precision(dtype):
        t0 = time.perf_counter()
        args = (net.init(seed, seeds, np.dtype(dtype), first), as_arrays(net.numbers(), dtype),
                jnp.asarray(X, dtype), jnp.asarray(y, dtype), plan_arrays(st, dtype))
        t1 = time.perf_counter()
        steps = spec.training.steps
        opt = (st.coupled, st.nesterov, st.adam)
        how = (spec.training.loss, spec.training.center_output)
        program, compile_time = compiled(("simulate", net.skeleton(), steps, record, displacement, opt, how),
                                         lambda: ensemble(net, steps, record, displacement, opt, *how), args)
        t2 = time.perf_counter()
        (loss, loss_batch, loss_test), f, order, moved = jax.block_until_ready(program(*args))
        t3 = time.perf_counter()
        loss, f = np.asarray(loss), np.asarray(f)
        losses = {"loss_batch": np.asarray(loss_batch)} if spec.training.batches is not None else {}
        if st.n_test:
            losses["loss_test"] = np.asarray(loss_test)
        order = {k: np.asarray(v) for k, v in sorted(order.items())}
        moved = {k: np.asarray(v) for k, v in sorted(moved.items())}
    timings = {"init": t1 - t0, "compile": compile_time, "run": t3 - t2}
    return Simulation(spec.name, net.sizes, seeds, seed, record, dtype, loss, f, f[:, 0].copy(),
                      MappingProxyType(order), MappingProxyType(timings), MappingProxyType(moved),
                      spec_raw=spec.raw, losses=MappingProxyType(losses))


def sweep(spec: Spec, sizes: Iterable[Mapping[str, int]], seeds: int = 8, *, record: str = "full",
          dtype: str = "float32", seed: int = 0, data: Data | None = None,
          displacement: bool = False, budget: int = 2 * 2**30) -> tuple[Simulation, ...]:
    """`simulate` at each entry of `sizes` in turn (same seeds, same data)."""
    data = spec_data(spec, data)
    return tuple(simulate(spec, s, seeds, record=record, dtype=dtype, seed=seed, data=data,
                          displacement=displacement, budget=budget) for s in sizes)


def ensemble(net: Network, steps: int, record: str, displacement: bool = False,
             opt: tuple = (False, False, False), loss_kind: str = "mse", center: bool = False) -> Callable:
    """(initial params (seeds, ...), numbers, X, y, plan) -> ((train, batch, held-out loss), f, order
    parameters, displacements), each with a leading seeds axis (displacements {} unless `displacement`).
    Only the structure of `net` is used: its constants come in as `numbers`, the training setup's as
    `plan` (`plan_arrays`); `opt` = (coupled decay, Nesterov, Adam), the update rule's structure; `loss_kind` the loss,
    `center` whether the networks train on f - f(0) (`training.center_output`)."""
    names = tuple(dict.fromkeys(s.tap for s in net.sites)) if record != "none" else ()

    def one(params, numbers, x, y, taps, plan):
        rule = plan_rule(plan, numbers, opt)
        f0 = apply(net, params, x, None, numbers)[0] if center else None

        def one_step(carry, t):
            current, states = carry
            grads, out = observe(net, current, x, y, taps, record, numbers,
                                 (plan["Omega"][t], plan["wtrain"], plan["wtest"]), loss_kind, f0)
            out = out + ((relative_displacement(current, params) if displacement else {}),)
            moved = {k: step(current[k], states[k], grads[k], numbers[f"lr/{k}"], t, rule) for k in current}
            return ({k: m[0] for k, m in moved.items()}, {k: m[1] for k, m in moved.items()}), out

        # T + 1 observations; the update made after the last one is discarded. One traced step
        # instead of a step plus a separate final observation: about a third less to compile,
        # for 1 / (T + 1) more gradient work. The optimizer's state per weight: (v,) or Adam's (m, v).
        zero = {k: tuple(jnp.zeros_like(v) for _ in range(2 if rule.adam else 1)) for k, v in params.items()}
        return jax.lax.scan(one_step, (params, zero), jnp.arange(steps + 1))[1]

    def run(params, numbers, x, y, plan):
        taps = zero_taps(net, x, names)
        seeds = jax.tree.leaves(params)[0].shape[0]
        batch = seeds_per_batch(net, seeds, x.dtype.itemsize)
        losses, f, recs, moved = jax.lax.map(lambda p: one(p, numbers, x, y, taps, plan), params, batch_size=batch)
        return losses, f, (kernels_full(recs) if record == "full" else recs), moved

    return run


def plan_arrays(st: Setup, dtype: str) -> dict:
    """The training setup as the program's input (`dmftc.training`): the step factors (T + 1,: the update after
    the last observation is discarded), momentum, decay and lr, the error and loss weights over the points."""
    train, test = loss_weights(st)
    return {"schedule": jnp.asarray(np.append(st.schedule, 0.0), dtype), "momentum": jnp.asarray(st.momentum, dtype),
            "decay": jnp.asarray(st.decay, dtype), "lr": jnp.asarray(st.lr, dtype),
            "Omega": jnp.asarray(error_weights(st), dtype), "wtrain": jnp.asarray(train, dtype),
            "wtest": jnp.asarray(test, dtype), "betas": jnp.asarray(st.betas, dtype), "eps": jnp.asarray(st.eps, dtype)}


def plan_rule(plan: dict, numbers, opt: tuple) -> SimpleNamespace:
    """The `dmftc.training.step` rule from the program's inputs (traced values, static structure)."""
    coupled, nesterov, adam = opt
    return SimpleNamespace(schedule=plan["schedule"], momentum=plan["momentum"], decay=plan["decay"], lr=plan["lr"],
                           coupled=coupled, nesterov=nesterov, adam=adam, betas=plan["betas"], eps=plan["eps"])


def relative_displacement(params, initial) -> dict[str, jax.Array]:
    """||W - W(0)||_F / ||W(0)||_F per weight copy (inf or NaN where W(0) = 0)."""
    return {k: jnp.sqrt(jnp.sum(jnp.square(params[k] - initial[k])) / jnp.sum(jnp.square(initial[k])))
            for k in params}


#: bytes of weights, gradients and updated weights that one batch of networks may keep in
#: flight: half the 32 MiB L3 of the reference machine. Wide networks then train one at a
#: time from cache (measured 2x faster than all seeds vmapped at N = 1024); small ones are
#: vmapped together, which amortises the per-op overhead.
CACHE_BUDGET = 16 * 2**20


def weight_count(net: Network) -> int:
    """Number of weights of one network (every parameter is a (fan_out, fan_in) matrix)."""
    return sum(p.shape[0] * p.shape[1] for p in net.params.values())


def seeds_per_batch(net: Network, seeds: int, itemsize: int) -> int:
    """How many networks to vmap together (the rest is a sequential `lax.map`)."""
    per_network = 3 * itemsize * weight_count(net)
    return max(1, min(seeds, CACHE_BUDGET // per_network))


def as_arrays(numbers: Mapping[str, float], dtype: str) -> dict[str, jax.Array]:
    """The network's constants as scalar arrays of the run's dtype (inputs of the programs)."""
    return {k: jnp.asarray(v, dtype) for k, v in numbers.items()}


def check_seeds(seeds: int) -> int:
    if seeds < 1:
        raise DmftcError(f"seeds={seeds} must be at least 1")
    return seeds


def precision(dtype: str) -> contextlib.AbstractContextManager:
    """A context in which arrays of `dtype` exist: float64 needs jax's x64 mode, scoped here."""
    if dtype not in DTYPES:
        raise DmftcError(f"dtype={dtype!r} is not one of {', '.join(map(repr, DTYPES))}")
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
