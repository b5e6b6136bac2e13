"""Spec texts shared by the spec tests: a small valid mup MLP that each test mutates."""

BASE = """\
dmftc: 1
name: base_net
sizes: {N: 64, L: 2}
hyper: {gamma0: 1.0, eta: 0.5}
model:
  - dense: {out: N, name: W0}
  - act: relu
  - repeat:
      times: L - 1
      body:
        - dense: {out: N}
        - act: relu
  - readout: {name: w}
parameterization:
  preset: mup
limit: {N: inf}
training: {lr: eta, steps: 5}
data:
  synthetic: {P: 4, D: 8, target: tanh_linear, seed: 0}
"""
