"""Cross-check: DMFT predictions against ensembles of finite networks as their size grows.

Works on plain arrays, so it depends on neither the simulator nor the solver::

    report = crosscheck({"loss": dmft_loss}, {128: {"loss": losses_128}, 256: {"loss": losses_256}})
    print(report.table())
    write_json_atomic("out/check.json", report.to_json())
    plot_convergence(report, "loss", "out/convergence_loss.png")

What is measured (docs/theory.md#finite-size): the bias of the seed-averaged network,
||E finite - DMFT||, estimated without the seed noise that dominates the naive
distance (expected rate n^-1), and the fluctuation of single networks around
their mean (expected rate n^-1/2), each with a standard error; power laws of
both in the size; verdicts against the predicted rates.

`dmftc.crosscheck.heads` (head collapse of attention: across-head variance of the logits as
the key dimension grows) is the exception: it runs the simulator and the scaling analysis, so
it ranks above them and is imported by name, not from here.
"""

from dmftc.crosscheck.files import save_figure_atomic as save_figure_atomic
from dmftc.crosscheck.files import write_json_atomic as write_json_atomic
from dmftc.crosscheck.fit import FloorFit as FloorFit
from dmftc.crosscheck.fit import PowerLaw as PowerLaw
from dmftc.crosscheck.fit import Verdict as Verdict
from dmftc.crosscheck.fit import compare_rate as compare_rate
from dmftc.crosscheck.fit import fit_floor as fit_floor
from dmftc.crosscheck.fit import fit_power_law as fit_power_law
from dmftc.crosscheck.plots import plot_convergence as plot_convergence
from dmftc.crosscheck.plots import plot_curves as plot_curves
from dmftc.crosscheck.progress import progress as progress
from dmftc.crosscheck.report import QuantityCheck as QuantityCheck
from dmftc.crosscheck.report import Report as Report
from dmftc.crosscheck.report import crosscheck as crosscheck
from dmftc.crosscheck.stats import Distance as Distance
from dmftc.crosscheck.stats import distance as distance
from dmftc.crosscheck.stats import seed_mean_se as seed_mean_se

__all__ = [
    "Distance", "FloorFit", "PowerLaw", "QuantityCheck", "Report", "Verdict",
    "compare_rate", "crosscheck", "distance", "fit_floor", "fit_power_law", "plot_convergence",
    "plot_curves", "progress", "save_figure_atomic", "seed_mean_se", "write_json_atomic",
]
