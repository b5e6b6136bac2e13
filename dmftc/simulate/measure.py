"""One-step measurements: the coordinate size of every quantity at init and after one GD step.

Each quantity is an RMS over coordinates, samples, tokens and the copies of a repeat
(pooled: sqrt of the total sum of squares over the total count), per network; then
averaged over the seeds. Names (weight names without copy index, node ids as in the Graph):
- fwd:<weight>   output of that weight's op at init (dense: m W x; attention: <attn>_K keys,
                 _Q queries, _V values, _O projected output; readout: f);
- bwd:<weight>   df/d(that output) / s_hat at init, s_hat = m_readout * std_readout (the backward
                 fields' normalisation, as in `observe`; for the readout itself: 1 / s_hat);
- dW:<weight>    entries of the first GD update, in parameter units;
- dfwd:<weight>  change of that output after one step, same inputs;
- f0, df         the output at init and its change after one step;
- logit:<attn>, dlogit:<attn>  attention logits at init and their change after one step;
- logit_headvar:<attn>  variance across heads (unbiased; 0 for one head) of each logit
                 entry at init, averaged over entries and copies (a variance, not an RMS);
- branch:<residual node id>, dbranch:<residual node id>  scale * branch(h) at init, its change.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..spec.types import Spec
from .data import Data, spec_data
from .forward import apply
from .network import Network, build_network
from .observe import zero_taps
from .programs import QUICK, compiled
from .train import as_arrays, check_seeds, precision, seeds_per_batch


def measure_one_step(spec: Spec, sizes: Mapping[str, int] | None = None, seeds: int = 4, seed: int = 0, *,
                     data: Data | None = None, dtype: str = "float32") -> dict[str, float]:
    """quantity name -> its RMS coordinate size, averaged over `seeds` networks (see the module doc)."""
    per_seed = measure_one_step_seeds(spec, sizes, seeds, seed, data=data, dtype=dtype)
    return {k: float(np.mean(v)) for k, v in per_seed.items()}


def measure_one_step_seeds(spec: Spec, sizes: Mapping[str, int] | None = None, seeds: int = 4,
                           seed: int = 0, *, data: Data | None = None,
                           dtype: str = "float32") -> dict[str, np.ndarray]:
    """`measure_one_step` before the seed average: quantity name -> (seeds,) values."""
    X, y = spec_data(spec, data)
    net = build_network(spec, sizes, X.shape)
    with precision(dtype):
        args = (net.init(seed, check_seeds(seeds), np.dtype(dtype)), as_arrays(net.numbers(), dtype),
                jnp.asarray(X, dtype), jnp.asarray(y, dtype))
        # small networks: compile time dominates one step, so compile quickly (see programs.QUICK)
        quick = QUICK if sum(np.prod(p.shape) for p in net.params.values()) <= 2**20 else ()
        program, _ = compiled(("measure_one_step", net.skeleton()), lambda: _ensemble(net), args, quick)
        out = program(*args)
        return {k: np.asarray(v, np.float64) for k, v in sorted(out.items())}


def _ensemble(net: Network):
    def run(params, numbers, x, y):
        batch = seeds_per_batch(net, jax.tree.leaves(params)[0].shape[0], x.dtype.itemsize)
        return jax.lax.map(lambda p: _one(net, p, numbers, x, y), params, batch_size=batch)

    return run


def _one(net: Network, p0, numbers, x, y) -> dict[str, jax.Array]:
    taps = zero_taps(net, x, tuple(f"out:{k}" for k in net.params))
    f0, vjp, a0 = jax.vjp(lambda p, t: apply(net, p, x, t, numbers), p0, taps, has_aux=True)
    grads, _ = vjp((f0 - y) / y.shape[0])
    _, back = vjp(jnp.ones_like(f0))
    dW = {k: numbers[f"lr/{k}"] * grads[k] for k in net.params}
    f1, a1 = apply(net, {k: p0[k] - dW[k] for k in p0}, x, None, numbers)
    rms, mean = _Pool(squared=True), _Pool(squared=False)
    for k, p in net.params.items():
        out = f"out:{k}"
        rms.add(f"fwd:{p.weight}", a0[out])
        rms.add(f"bwd:{p.weight}", back[out] / numbers["s_readout"])
        rms.add(f"dW:{p.weight}", dW[k])
        rms.add(f"dfwd:{p.weight}", a1[out] - a0[out])
    rms.add("f0", f0)
    rms.add("df", f1 - f0)
    for name in a0:
        kind, _, where = name.partition(":")
        if kind == "logits":
            rms.add(f"logit:{_base(where)}", a0[name])
            rms.add(f"dlogit:{_base(where)}", a1[name] - a0[name])
            mean.add(f"logit_headvar:{_base(where)}", _head_variance(a0[name]))
        elif kind == "branch":
            rms.add(f"branch:{_base(where)}", a0[name])
            rms.add(f"dbranch:{_base(where)}", a1[name] - a0[name])
    return rms.result() | mean.result()


def _head_variance(logits: jax.Array) -> jax.Array:
    """Across-head variance of each (P, H, S, S) logit entry: the heads axis is 1."""
    if logits.shape[1] < 2:
        return jnp.zeros_like(logits[:, 0])
    return jnp.var(logits, axis=1, ddof=1)


def _base(name: str) -> str:
    """'W1[0]' -> 'W1'."""
    return name.split("[")[0]


class _Pool:
    """Running sums per quantity pooling the copies of a repeat: sum of values (or squares) / count."""

    def __init__(self, squared: bool):
        self.squared = squared
        self.total: dict[str, jax.Array] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, value: jax.Array) -> None:
        self.total[name] = self.total.get(name, 0.0) + jnp.sum(jnp.square(value) if self.squared else value)
        self.count[name] = self.count.get(name, 0) + value.size

    def result(self) -> dict[str, jax.Array]:
        means = {k: v / self.count[k] for k, v in self.total.items()}
        return {k: jnp.sqrt(v) for k, v in means.items()} if self.squared else means
