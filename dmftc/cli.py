"""The `dmftc` command line. Exit codes: 0 ok, 1 the user's error (no traceback), 2 a bug.

`dmftc heads` is a measurement with a verdict and exits like diff or grep: 0 every verdict
passes, 1 some verdict fails or is unresolved, 2 bad input (printed without a traceback) or a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path

from .errors import DmftcError


def _sizes(text: str | None) -> dict[str, list[int]]:
    """'N=128,256' -> {'N': [128, 256]}; several axes separated by ';'."""
    if not text:
        return {}
    out = {}
    for part in text.split(";"):
        name, _, vals = part.partition("=")
        if not name.isidentifier() or not vals:
            raise DmftcError(f"--sizes/--size expects NAME=V1,V2,... (got {part!r})")
        try:
            out[name] = [int(v) for v in vals.split(",")]
        except ValueError:
            raise DmftcError(f"--sizes/--size values must be integers (got {vals!r})") from None
    return out


def _load(args):
    from .spec import load

    return load(args.spec, overrides=tuple(args.set or ()))


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

    prog = compile_spec(_load(args))
    sol = prog.solve()
    path = sol.save(args.out, prog.spec)
    loss = sol.loss
    print(f"wrote {path}: loss {loss[0]:.6g} -> {loss[-1]:.6g} over {len(loss) - 1} steps "
          f"({sol.meta['seconds']:.2f} s, {sol.meta['method']})")
    if "warning" in sol.meta:
        print(f"dmftc solve: warning: {sol.meta['warning']}", file=sys.stderr)


def cmd_simulate(args) -> None:
    from .simulate import simulate

    spec = _load(args)
    sizes = {k: v[0] for k, v in _sizes(args.size).items()}
    sim = simulate(spec, sizes=sizes or None, seeds=args.seeds)
    path = sim.save(args.out)
    print(f"wrote {path}: mean loss {sim.loss.mean(0)[0]:.6g} -> {sim.loss.mean(0)[-1]:.6g} ({args.seeds} seeds)")


def cmd_check(args) -> None:
    from .check import run_check

    report = run_check(_load(args), _sizes(args.sizes), seeds=args.seeds, out_dir=Path(args.out))
    print(report.table())  # ends with the summary, wrapped


def cmd_heads(args) -> int:
    from .crosscheck import progress, write_json_atomic
    from .crosscheck.heads import measure_heads

    report = measure_heads(_load(args), _sizes(args.sizes), seeds=args.seeds, seed=args.seed, progress=progress)
    out = Path(args.out)
    path = write_json_atomic(out / "heads.json", report.to_json())
    plots = report.plot(out)
    print(report.summary())
    print(f"wrote {path} and {len(plots)} plots in {out}")
    return 0 if report.passed else 1


def cmd_reproduce(args) -> int:
    from .crosscheck import progress
    from .reproduce import reproduce

    result = reproduce(Path(args.out), quick=args.quick, progress=progress)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmftc", description="DMFT compiler for neural-network training dynamics")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, fn, help_, spec=True):
        sp = sub.add_parser(name, help=help_)
        if spec:
            sp.add_argument("spec", help="the spec file (YAML)")
            sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scalar by dotted path")
        sp.add_argument("--compile-cache", metavar="DIR",
                        help="keep compiled solvers in DIR for later runs (opt-in; JAX's persistent cache)")
        sp.set_defaults(fn=fn)
        return sp

    add("schema", cmd_schema, "print the JSON Schema of the spec format", spec=False)
    add("graph", cmd_graph, "print the computation graph").add_argument("--dot", help="also write Graphviz DOT here")
    add("analyze", cmd_analyze, "symbolic scaling analysis").add_argument("--json", action="store_true")
    add("compile", cmd_compile, "write generated/<name>.py and .tex").add_argument("--out", default="generated")
    add("latex", cmd_latex, "print the DMFT equations as LaTeX").add_argument("--standalone", action="store_true")
    add("solve", cmd_solve, "solve the DMFT; writes solution.npz/json").add_argument("--out", required=True)
    sim = add("simulate", cmd_simulate, "train finite networks of the spec")
    sim.add_argument("--out", required=True)
    sim.add_argument("--size", help="e.g. N=1024")
    sim.add_argument("--seeds", type=int, default=8)
    chk = add("check", cmd_check, "DMFT vs finite networks as sizes grow")
    chk.add_argument("--out", required=True)
    chk.add_argument("--sizes", help="e.g. N=128,256,512,1024")
    chk.add_argument("--seeds", type=int, default=8)
    hd = add("heads", cmd_heads, "head collapse: across-head variance of the attention logits as sizes grow "
                                 "(exit 0 pass, 1 fail or unresolved, 2 bad input)")
    hd.add_argument("--sizes", required=True, help="one limit size, e.g. N=16,32,64,128,256")
    hd.add_argument("--seeds", type=int, default=8)
    hd.add_argument("--seed", type=int, default=0, help="first seed of the ensembles")
    hd.add_argument("--out", required=True)
    hd.set_defaults(input_error=2)
    rp = add("reproduce", cmd_reproduce, "the seed paper's phenomena on a small token task: head collapse, head "
                                         "diversity, concentration, the depth tension (exit 0 all consistent, "
                                         "1 otherwise, 2 bad input)", spec=False)
    rp.add_argument("--out", required=True, help="directory for report.md, report.json and the PNG figures")
    rp.add_argument("--quick", action="store_true", help="3 sizes per axis and 5 steps (about half a minute)")
    rp.set_defaults(input_error=2)
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console command, not a caller's Python: Ctrl-C ends the process at once
        signal.signal(signal.SIGINT, _interrupted)
    args = build_parser().parse_args(argv)
    try:
        check_outputs(args)
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
