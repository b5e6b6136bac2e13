"""The `dmftc` command line. Exit codes: 0 ok, 1 the user's error (no traceback), 2 a bug.

`dmftc check`, `dmftc heads` and `dmftc reproduce` are measurements with a verdict and exit like diff or grep:
0 every verdict passes, 1 some verdict fails or is unresolved, 2 bad input (printed without a
traceback) or a bug.

Every argument is checked before any work, in this order (`prepare`): argparse's usage errors
(one line, exit 1, or 2 for the verdict commands), the sizes' syntax (an argparse type), what needs
no spec (`check_args`: seeds, how many sizes the command needs), the output paths given
(`check_outputs`), what needs the spec (`check_spec_args`: the size names it declares), then the
default --out, which names the spec (`DEFAULT_OUT`). Nothing here imports jax: the commands import
their stages when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from . import __version__
from .errors import DmftcError


def _sizes(text: str) -> dict[str, list[int]]:
    """--sizes 'N=128,256' -> {'N': [128, 256]}; several axes separated by ';'.

    An argparse type, so a bad text is a usage error that names the fault: a size name is an
    identifier given once, its values positive integers below the spec stage's integer bound
    (`dmftc.spec.limits.MAX_INT`, 2**63), none twice. What fits this machine is `dmftc.budget`'s
    to say, before any work too.
    """
    from .spec.limits import MAX_INT, MAX_INT_DIGITS, shorten

    def bad(reason: str):
        raise argparse.ArgumentTypeError(f"{reason} (expected NAME=V1,V2,... with ';' between axes, "
                                         f"e.g. N=128,256,512; got {shorten(text)!r})")

    out: dict[str, list[int]] = {}
    for part in text.split(";"):
        name, eq, vals = (s.strip() for s in part.partition("="))
        if not eq:
            bad(f"{shorten(part.strip())!r} has no '='")
        if not name.isidentifier():
            bad(f"{shorten(name)!r} is not a size name")
        if name in out:
            bad(f"names {name} twice")
        if not vals:
            bad(f"{name} has no values")
        values: list[int] = []
        for v in (s.strip() for s in vals.split(",")):
            if not v:
                bad(f"{name} has an empty value")
            if not re.fullmatch(r"[+-]?[0-9]+", v):
                bad(f"{shorten(v)!r} is not a whole number")
            if len(v.lstrip("+-")) > MAX_INT_DIGITS or int(v) >= MAX_INT:
                bad(f"{name}={shorten(v)} is too large: sizes are below 2**63")
            if int(v) < 1:
                bad(f"{name}={v} is not positive: a size is a positive integer")
            if int(v) in values:
                bad(f"{name} lists {int(v)} twice")
            values.append(int(v))
        out[name] = values
    return out


def _load(args):
    """The spec, loaded once (`main` loads it before the output checks) with its warnings shown."""
    if getattr(args, "loaded", None) is not None:
        return args.loaded
    from .spec import load

    spec = load(args.spec, overrides=tuple(args.set or ()) + _solver_flags(args))
    for warning in spec.warnings:  # unused or defaulted hyperparameters; the exit code stays
        print(f"dmftc {args.command}: warning: {warning}", file=sys.stderr)
    args.loaded = spec
    return spec


#: solve's flags that set a solver key (validated, bounded and located like the spec's own value)
SOLVER_FLAGS = ("samples", "batches", "rtol", "atol")


def _solver_flags(args) -> tuple[str, ...]:
    return tuple(f"solver.{k}={getattr(args, k)}" for k in SOLVER_FLAGS if getattr(args, k, None) is not None)


def cmd_schema(args) -> None:
    from .spec import json_schema

    print(json.dumps(json_schema(), indent=2, sort_keys=True))


def cmd_graph(args) -> None:
    from .graph import build_graph

    g = build_graph(_load(args))
    if args.dot:
        from .codegen.emit import write_atomic

        write_atomic(Path(args.dot), g.to_dot())
        print(f"wrote {args.dot}")
    print(g.describe())


def cmd_analyze(args) -> None:
    from .scaling import analyze

    sc = analyze(_load(args))
    print(json.dumps(sc.to_json(), indent=2, sort_keys=True) if args.json else str(sc))


def cmd_compile(args) -> None:
    from .program import compile_spec

    prog = compile_spec(_load(args))
    py, tex = prog.write(args.out)
    print(f"wrote {py} and {tex} ({prog.equations.regime} limit, {prog.equations.method})")


def cmd_latex(args) -> None:
    from .program import compile_spec

    print(compile_spec(_load(args)).latex(standalone=args.standalone), end="")


def cmd_solve(args) -> None:
    from .program import compile_spec

    spec = _load(args)
    prog = compile_spec(spec)
    # the spec's accuracy target holds (`Program.solve`) unless --samples alone fixes the draws; --rtol and
    # --atol reach it as solver.rtol and solver.atol, --samples as the first round's draws
    fixed = args.samples is not None and args.rtol is None and args.atol is None
    sol = prog.solve(samples=spec.solver.samples if fixed else None, progress=True)
    path = sol.save(args.out, prog.spec)
    print(f"wrote {path}: {solve_line(sol)}")
    for name, what in (("loss_test", "held-out loss"), ("loss_batch", "batch loss")):
        if name in sol.arrays:
            print(f"  {what}: {solve_line(sol, name).split(' over ')[0].removeprefix('loss ')}")
    errs = sol.meta.get("errors", {})
    if "accuracy" in errs:
        reps = f" x {errs['replicas']} independent replicas" if errs.get("replicas", 1) > 1 else ""
        print(f"accuracy: {errs['accuracy']}; chose {errs['samples']} draws{reps} in {errs['batches']} batches")
    if "warning" in sol.meta:
        print(f"dmftc solve: warning: {sol.meta['warning']}", file=sys.stderr)


def solve_line(sol, name: str = "loss") -> str:
    """'loss 0.2067 -> 0.00046 +- 0.00002 over 50 steps (...)': the first and last loss with their errors."""
    loss, se, res = sol.arrays[name], sol.se(name), sol.errors.get("residual", {}).get(name)

    def pm(t: int) -> str:
        if se is None:
            return f"{loss[t]:.6g}"
        err = float(se[t] if res is None else max(se[t], abs(res[t])))
        exact = err <= 1e-12 * max(abs(float(loss[t])), 1.0)   # round-off, not a Monte Carlo error
        return f"{loss[t]:.6g}" if exact else f"{loss[t]:.6g} +- {err:.2g}"

    how = sol.meta.get("errors", {}).get("method", "none")
    tail = {"exact": "exact", "deterministic": "deterministic", "none": "no error bars",
            "batches": "+- the larger of standard error and residual bias; bias removed"}.get(how, how)
    return (f"loss {pm(0)} -> {pm(len(loss) - 1)} over {len(loss) - 1} steps "
            f"({sol.meta['seconds']:.2f} s, {sol.meta['method']}; {tail})")


def cmd_simulate(args) -> None:
    from .simulate import simulate

    spec = _load(args)
    sizes = {k: v[0] for k, v in (args.sizes or {}).items()}  # one value per axis (`check_args`)
    sim = simulate(spec, sizes=sizes or None, seeds=args.seeds, progress=True)
    path = sim.save(args.out)
    print(f"wrote {path}: mean loss {sim.loss.mean(0)[0]:.6g} -> {sim.loss.mean(0)[-1]:.6g} ({args.seeds} seeds)")
    if "loss_test" in sim.losses:
        test = sim.losses["loss_test"].mean(0)
        print(f"  held-out loss: {test[0]:.6g} -> {test[-1]:.6g}")


def cmd_check(args) -> int:
    from .check import default_sizes, run_check
    from .crosscheck.needs import RATE_SIZES, require_sizes

    spec = _load(args)
    sizes = args.sizes or default_sizes(spec)
    if not args.sizes:  # the default sizes too: a small spec may give too few, and they are the user's spec
        (name, values), = sizes.items()
        require_sizes(values, RATE_SIZES, name, "check")
    report = run_check(spec, sizes, seeds=args.seeds, out_dir=Path(args.out), report_progress=True)
    print(report.table())  # ends with the summary and the criterion, wrapped
    return 0 if report.passed else 1  # like heads: 1 when any rate is inconsistent or unresolved


def cmd_heads(args) -> int:
    from .crosscheck import progress, write_json_atomic
    from .crosscheck.heads import measure_heads

    report = measure_heads(_load(args), args.sizes, seeds=args.seeds, seed=args.seed, progress=progress)
    out = Path(args.out)
    path = write_json_atomic(out / "heads.json", report.to_json())
    plots = report.plot(out)
    print(report.summary())
    print(f"wrote {path} and {len(plots)} plots in {out}")
    return 0 if report.passed else 1


def cmd_reproduce(args) -> int:
    from .crosscheck import progress
    from .reproduce import reproduce

    from .spec import load

    spec = load(args.model, overrides=tuple(args.set)) if args.model else None
    result = reproduce(Path(args.out), quick=args.quick, progress=progress, spec=spec)
    print(result.summary())
    print(f"wrote {', '.join(result.files)} in {args.out}")
    return 0 if result.passed else 1


def _interrupted(signum, frame) -> None:
    """SIGINT in the console command: one line, no half-written file, exit 130 now.

    Raising KeyboardInterrupt instead unwinds through JAX's and XLA's threads, which has ended
    in a segmentation fault, or been swallowed so that the solve ran on; os._exit leaves at once.
    The atomic writers' temporary files (dmftc.files) are removed first; finished files stay.
    """
    from .files import remove_pending

    remove_pending()
    os.write(2, b"dmftc: interrupted\n")
    os._exit(130)


#: command -> its --out folder when none is given ({spec}: the spec's name, an identifier)
DEFAULT_OUT = {"solve": "runs/{spec}/solve", "simulate": "runs/{spec}/simulate", "check": "runs/{spec}/check",
               "heads": "runs/{spec}/heads", "reproduce": "runs/reproduce"}


def _default_out(command: str) -> str:
    """The default of --out as --help states it."""
    return DEFAULT_OUT[command].format(spec="<spec name>")


def check_args(args) -> None:
    """Every argument that needs no spec, before anything is loaded or run: seeds (`dmftc.budget`: at least 1;
    `dmftc.crosscheck.needs`: what the standard errors need), --seed, and the sizes each command takes (one
    value per axis for simulate; one axis of enough sizes for a rate (check) or a verdict (heads))."""
    command = args.command
    if command == "simulate":
        alias = args.size is not None
        if alias and args.sizes is not None:
            raise DmftcError("--size is the deprecated spelling of --sizes: give --sizes only, not both")
        args.sizes = args.size if alias else args.sizes
        several = [f"{k}={','.join(map(str, v))}" for k, v in (args.sizes or {}).items() if len(v) != 1]
        if several:
            raise DmftcError(f"simulate trains one size per axis; got {'; '.join(several)}: run it once per size, "
                             "or compare sizes with dmftc check")
        if alias:
            print("dmftc simulate: warning: --size is deprecated; use --sizes (same syntax)", file=sys.stderr)
    if command not in ("simulate", "check", "heads"):
        return
    from .budget import check_seeds
    from .crosscheck.needs import DISTANCE_SEEDS, RATE_SIZES, SE_SEEDS, VERDICT_SIZES, require_seeds, require_sizes

    check_seeds(args.seeds)
    if command == "simulate":
        return
    require_seeds(args.seeds, DISTANCE_SEEDS if command == "check" else SE_SEEDS)
    if command == "heads":
        from .spec.limits import SEED_ALLOWED, SEED_LIMIT

        if not 0 <= args.seed < SEED_LIMIT:
            raise DmftcError(f"--seed {args.seed}: {SEED_ALLOWED}")
    if args.sizes is None:  # check: the spec's default sizes, checked when they are known (`cmd_check`)
        return
    if len(args.sizes) != 1:
        raise DmftcError(f"{command} measures along one size axis; got {', '.join(args.sizes)}: give one, "
                         f"e.g. --sizes {next(iter(args.sizes))}=128,256,512")
    (name, values), = args.sizes.items()
    require_sizes(values, RATE_SIZES if command == "check" else VERDICT_SIZES, name, command)


def check_spec_args(args, spec) -> None:
    """The arguments that need the spec: --sizes names sizes it declares."""
    for name in getattr(args, "sizes", None) or {}:
        if name not in spec.sizes:
            raise DmftcError(f"--sizes names {name!r}, which the spec does not declare (sizes: {sorted(spec.sizes)})")


#: argument -> what it names, for the output checks made before any work
_OUTPUTS = {"out": "folder", "dot": "file"}


def check_outputs(args) -> None:
    """Every output path the command will write is usable, checked before the work starts.

    An --out folder may exist (as a folder) or be creatable: its nearest existing ancestor must be
    a writable folder. A file (--dot) must not be a folder, and its folder must be usable likewise.
    """
    for arg, kind in _OUTPUTS.items():
        value = getattr(args, arg, None)
        if value:
            check_output(Path(value), kind, f"--{arg}")


def check_output(path: Path, kind: str, what: str) -> None:
    """Raise DmftcError when `path` cannot be written as a `kind` ("folder" or "file")."""
    def refuse(reason: str):
        raise DmftcError(f"{what} {str(path)!r} {reason}")

    if path.exists() or path.is_symlink():
        if kind == "folder" and not path.is_dir():
            refuse("exists and is not a folder; name a folder (it is created if missing)")
        if kind == "file" and path.is_dir():
            refuse("is a folder; name a file, e.g. graph.dot")
        if kind == "file" and not path.is_file():
            refuse("exists and is not a regular file")
    folder = path if kind == "folder" and path.is_dir() else path.parent
    ancestor = folder
    while not ancestor.exists():
        if ancestor.is_symlink():
            refuse("goes through a broken symbolic link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        refuse(f"cannot be created: {str(ancestor)!r} is not a folder")
    try:  # a real write: permissions, read-only file systems and full disks all show here
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as e:
        refuse(f"cannot be written: {e.strerror or e} in {str(ancestor)!r}")


class UsageError(Exception):
    """An argparse usage error (missing or unknown argument, bad value): the user's error, one line."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(message)
        self.parser, self.message = parser, message

    @property
    def code(self) -> int:
        """1, or the command's code for bad input (2 for the verdict commands: check, heads and reproduce)."""
        return self.parser.get_default("input_error") or 1

    def __str__(self) -> str:
        return f"{self.parser.prog}: {self.message} (see {self.parser.prog} --help)"


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors raised as `UsageError` (argparse prints the usage and exits 2, a bug's code)."""

    def error(self, message: str):
        raise UsageError(self, message)


EXIT_CODES = ("exit codes: 0 ok, 1 the user's error (printed without a traceback), 2 a bug; the verdict commands "
              "check, heads and reproduce: 0 every verdict passes, 1 one fails or is unresolved, 2 bad input or a bug")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dmftc", description="DMFT compiler for neural-network training dynamics", epilog=EXIT_CODES)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    p.commands = sub.choices  # command -> its parser (`parse` reports unknown arguments through it)

    def add(name, fn, help_, spec=True):
        sp = sub.add_parser(name, help=help_, description=help_)
        if spec:
            sp.add_argument("spec", help="the spec file (YAML)")
            sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scalar by dotted path")
        sp.add_argument("--compile-cache", metavar="DIR",
                        help="keep compiled solvers in DIR for later runs (opt-in; JAX's persistent cache)")
        sp.set_defaults(fn=fn)
        return sp

    def out(sp, what):
        default = _default_out(sp.prog.split()[-1])
        sp.add_argument("--out", metavar="DIR", help=f"folder for {what} (default: {default})")

    def seeds(sp, what):
        sp.add_argument("--seeds", type=int, default=8, metavar="S", help=f"{what} (default: 8)")

    add("schema", cmd_schema, "print the JSON Schema of the spec format", spec=False)
    add("graph", cmd_graph, "print the computation graph").add_argument("--dot", help="also write Graphviz DOT here")
    add("analyze", cmd_analyze, "symbolic scaling analysis").add_argument("--json", action="store_true")
    add("compile", cmd_compile, "write generated/<name>.py and .tex").add_argument(
        "--out", default="generated", metavar="DIR", help="folder for <name>.py and <name>.tex (default: generated)")
    add("latex", cmd_latex, "print the DMFT equations as LaTeX").add_argument("--standalone", action="store_true")
    slv = add("solve", cmd_solve, "solve the DMFT; writes solution.npz/json")
    out(slv, "solution.npz and solution.json")
    slv.add_argument("--rtol", metavar="R", help="accuracy: every step of the loss within R x its range in "
                     "reported error (default: the spec's solver.rtol, 1e-2); the draws grow until it holds")
    slv.add_argument("--atol", metavar="A", help="accuracy in absolute terms (default: solver.atol, 0)")
    slv.add_argument("--samples", metavar="M", help="draws: at most this many in the first round of an "
                     "accuracy target; given alone, fixed (no target)")
    slv.add_argument("--batches", metavar="K", help="independent batches of the error analysis (even, >= 4; "
                     "default: solver.batches, 8)")
    sim = add("simulate", cmd_simulate, "train finite networks of the spec")
    out(sim, "simulation.npz")
    sim.add_argument("--sizes", type=_sizes, metavar="NAME=V[;NAME=V]",
                     help="one size per axis, replacing the spec's, e.g. N=1024 or 'N=1024;L=4' (default: the spec's)")
    sim.add_argument("--size", type=_sizes, metavar="NAME=V", help="deprecated spelling of --sizes")
    seeds(sim, "networks to train, at least 1")
    chk = add("check", cmd_check, "DMFT vs finite networks as sizes grow (Adam: the sizes against each other)")
    out(chk, "check.json and the plots")
    chk.add_argument("--sizes", type=_sizes, metavar="NAME=V1,V2,...",
                     help="one size axis, several sizes, e.g. N=128,256,512,1024 (default: the spec's first limit "
                          "size at 1/8, 1/4, 1/2 and 1 times its value)")
    seeds(chk, "networks per size; the standard errors need several")
    chk.set_defaults(input_error=2)
    hd = add("heads", cmd_heads, "head collapse: across-head variance of the attention logits as sizes grow "
                                 "(exit 0 pass, 1 fail or unresolved, 2 bad input)")
    hd.add_argument("--sizes", type=_sizes, required=True, metavar="NAME=V1,V2,...",
                    help="one limit size, enough sizes for a verdict, e.g. N=16,32,64,128,256")
    seeds(hd, "networks per size; the standard errors need several")
    hd.add_argument("--seed", type=int, default=0, help="first seed of the ensembles, 0 <= seed < 2**32 (default: 0)")
    out(hd, "heads.json and the plots")
    hd.set_defaults(input_error=2)
    rp = add("reproduce", cmd_reproduce, "the seed paper's phenomena on a small token task: head collapse, head "
                                         "diversity, concentration, the depth tension (exit 0 all consistent, "
                                         "1 otherwise, 2 bad input)", spec=False)
    out(rp, "report.md, report.json and the PNG figures")
    rp.add_argument("--quick", action="store_true", help="small sweeps (N = 16..64, H = 2..16, L = 2..8), 5 steps, 64 networks per size: about a minute")
    rp.add_argument("--model", metavar="SPEC", help="a token model to measure instead of the built-in task (its "
                                                    "attention's logit_scale reads alpha_A; the depth tension "
                                                    "needs a residual depth L)")
    rp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scalar of --model by dotted path")
    rp.set_defaults(input_error=2)
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, or `UsageError`; --help and --version print and raise SystemExit(0)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # argparse reports them from the top parser; the command's own gives its usage and exit code
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def prepare(args) -> None:
    """Every check that comes before the work: the arguments, the output paths given, the spec, then the
    default --out (it names the spec)."""
    check_args(args)
    check_outputs(args)
    spec = _load(args) if hasattr(args, "spec") else None
    if spec is not None:
        check_spec_args(args, spec)
    if getattr(args, "out", "") is None:
        args.out = DEFAULT_OUT[args.command].format(spec=spec.name if spec is not None else "")
        check_output(Path(args.out), "folder", "--out")


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console command, not a caller's Python: Ctrl-C ends the process at once
        signal.signal(signal.SIGINT, _interrupted)
    try:
        args = parse(argv)
    except UsageError as e:
        print(e, file=sys.stderr)
        return e.code
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    try:
        prepare(args)
        if args.compile_cache:
            from .compile_cache import enable_compile_cache

            enable_compile_cache(args.compile_cache)
        code = args.fn(args)
    except DmftcError as e:
        print(f"dmftc {args.command}: {e.render() if hasattr(e, 'render') else e}", file=sys.stderr)
        return getattr(args, "input_error", 1)
    except KeyboardInterrupt:
        print(f"dmftc {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a path the user gave that cannot be written or read
        where = f" {e.filename!r}" if e.filename is not None else ""
        print(f"dmftc {args.command}: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return getattr(args, "input_error", 1)
    except Exception:  # a bug: show everything
        traceback.print_exc()
        print("dmftc: internal error (a bug); please report it with the spec", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
