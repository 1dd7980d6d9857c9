"""The `omnigraph` command line: validate, show, nodes, schema, run, caption, make-checkpoint."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .runtime.errors import GraphValidationError, NodeFailed, UserError

if TYPE_CHECKING:
    from .runtime.interrupts import StopRequest

EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GraphValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except NodeFailed as exc:
        if isinstance(exc.error, UserError):  # bad input found by a node: its message is the whole story
            message = str(exc.error)
            print(f"error: {message if exc.node in message else f'node {exc.node!r}: {message}'}", file=sys.stderr)
            return EXIT_USER
        print(f"\nerror: {exc}", file=sys.stderr)
        if args.debug:
            if exc.remote_traceback:  # it ran on a Ray actor: its own traceback, from that process
                print(exc.remote_traceback, file=sys.stderr, end="")
            else:
                traceback.print_exception(exc.error)
        else:
            print("(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no bare tracebacks for users
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        else:
            print("(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnigraph", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    # --debug is also accepted after the subcommand (SUPPRESS: a subcommand must not reset it to False).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", parents=[common], help="check graph files; exit 2 listing every problem")
    p.add_argument("graphs", nargs="+", metavar="GRAPH", help="a graph file or the name of a shipped graph")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="also check the placements against this Ray cluster ('auto': $RAY_ADDRESS or a running one)")
    p.add_argument("--checkpoint", type=Path, metavar="DIR",
                   help="also check that this checkpoint fits every node: config fields, tensor names, shapes and "
                        "dtypes (from the safetensors headers; no weights are read)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("show", parents=[common], help="draw a graph")
    p.add_argument("graph", metavar="GRAPH")
    p.add_argument("--format", choices=("text", "mermaid", "dot", "svg", "png"), default="text")
    p.add_argument("-o", "--output", type=Path, help="file to write (required for svg and png)")
    p.set_defaults(func=_show)

    p = sub.add_parser("nodes", parents=[common], help="list node kinds with their ports and config fields")
    p.add_argument("kind", nargs="?", help="show only this kind")
    p.set_defaults(func=_nodes)

    p = sub.add_parser("schema", parents=[common], help="print the JSON Schema of graph files (for editors)")
    p.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    p.set_defaults(func=_schema)

    p = sub.add_parser("run", parents=[common], help="run a graph and write its outputs")
    p.add_argument("graph", metavar="GRAPH")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE", help="a graph input")
    p.add_argument("--set", "-s", action="append", default=[], metavar="NODE.FIELD=VALUE",
                   help="override a node config field (value read as YAML)")
    p.add_argument("--out", type=Path, help="output folder (default: out/<graph name>)")
    p.add_argument("--trace", type=Path, help="write a Chrome/Perfetto trace JSON here")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: threads in this process (default); ray: one Ray actor per placement stage")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join (default: $RAY_ADDRESS, else start a local one)")
    p.add_argument("--ray-num-gpus", type=_gpu_count, metavar="N",
                   help="logical GPUs of a local Ray cluster started for this run (default: the GPUs present)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where nodes compute unless their placement names a device; auto: CUDA when torch sees a "
                        "GPU (with --executor ray: when the stage reserved one), else CPU (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling nodes (default 0)")
    p.add_argument("--checkpoint", type=Path, metavar="DIR",
                   help="a Hugging Face checkpoint folder (default: the tiny random checkpoint, built once)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding in every decoding node")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="token budget of every text-generating node")
    p.add_argument("--max-frames", type=int, metavar="N", help="codec frame budget of every speech node (80 ms each)")
    p.set_defaults(func=_run)

    p = sub.add_parser("caption", parents=[common], help="caption many audio/video files into a JSONL or "
                       "Parquet file of records (resumable; locally or on Ray Data)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="files, folders (recursed), globs, or manifests (.jsonl/.csv/.parquet with a path column)")
    p.add_argument("--out", type=Path, required=True, help="the records: a .jsonl or .parquet file")
    p.add_argument("--graph", default="captioner", help="the graph run on each window (default captioner)")
    p.add_argument("--checkpoint", type=Path, metavar="DIR", help="a Hugging Face checkpoint folder "
                   "(default: the tiny random checkpoint)")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: $RAY_ADDRESS or a local one)")
    p.add_argument("--workers", type=_count, metavar="N", help="Ray: model actors in the pool (default 1)")
    p.add_argument("--batch-size", type=_count, default=16, metavar="N", help="windows in flight per model "
                   "(batched together; default 16, the Thinker's max_batch)")
    p.add_argument("--window-seconds", type=_seconds, default=30.0, metavar="S",
                   help="longest window; longer files are cut, on silences when any are near (default 30)")
    p.add_argument("--prompt", metavar="TEXT", help="an instruction for every file (a manifest's prompt wins)")
    p.add_argument("--resume", action="store_true", help="add the files --out lacks, keeping its records")
    p.add_argument("--retry-failed", action="store_true", help="rerun the files --out holds as errors")
    p.add_argument("--limit", type=_count, metavar="N", help="caption at most N files")
    p.add_argument("--dry-run", action="store_true", help="list what would run, with a time estimate; write nothing")
    p.add_argument("--greedy", action="store_true", help="greedy decoding")
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="token budget per window")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling (each window gets its own from it)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=_caption)

    p = sub.add_parser("make-checkpoint", parents=[common],
                       help="write a seeded random Qwen3-Omni or Qwen2.5-Omni checkpoint in the released format")
    p.add_argument("dir", type=Path, metavar="DIR", help="folder to create (must be new or empty)")
    p.add_argument("--preset", choices=("tiny", "small", "tiny25", "small25"), default="tiny",
                   help="Qwen3-Omni tiny: ~80 MB float32; small: ~0.44 GB bfloat16, sharded; Qwen2.5-Omni "
                        "tiny25: ~90 MB float32; small25: ~0.44 GB bfloat16, sharded (default: tiny)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.set_defaults(func=_make_checkpoint)
    return parser


def _gpu_count(text: str) -> float:
    """A number of (logical, possibly fractional) GPUs: finite and not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of GPUs") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of GPUs: give 0 or more (e.g. 1, 0.5)")
    return value


def _count(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}': give 1 or more")
    return value


def _seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': give a number of seconds above 0 (e.g. 30)")
    return value


def _caption(args: argparse.Namespace) -> int:
    from .caption.command import caption
    from .runtime.interrupts import run_interruptibly

    return run_interruptibly(lambda stop: caption(args, stop))


def _validate(args: argparse.Namespace) -> int:
    from .runtime.validate import load_graph

    failed = False
    for ref in args.graphs:
        try:
            graph = load_graph(ref)
            fits = _checkpoint_fits(graph, args.checkpoint) if args.checkpoint else None
        except UserError as exc:
            failed = True
            print(f"error: {exc}", file=sys.stderr)  # every message names its file (as in graphs/README.md)
            continue
        stages = _stages_on_cluster(graph, args.ray_address) if args.ray_address else []
        if stages is None:
            failed = True
            continue
        print(f"ok: {graph.file} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")
        if fits:
            print(fits)
        for line in stages:
            print(line)
    return EXIT_USER if failed else EXIT_OK


def _checkpoint_fits(graph: Any, path: Path) -> str:
    from .runtime.checkpoint_check import check_checkpoint

    report = check_checkpoint(graph, path)
    return f"  checkpoint {report.path} fits: {len(report.nodes)} nodes, {report.tensors} tensors checked"


def _stages_on_cluster(graph: Any, address: str) -> list[str] | None:
    """A line per Ray stage of the graph if the cluster at `address` can hold them all, else None (error shown)."""
    from .runtime.executor_ray import RayExecutor

    executor = RayExecutor(graph, address=address)
    try:
        executor.check_cluster()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    finally:
        executor.shutdown()
    return [f"  stage {s.name} x{s.replicas}: {', '.join(s.nodes)} ({s.describe()})" for s in executor.stages.values()]


def _show(args: argparse.Namespace) -> int:
    from .runtime import render
    from .runtime.validate import load_graph

    graph = load_graph(args.graph)
    if args.format in ("svg", "png"):
        if args.output is None:
            raise UserError(f"--format {args.format} needs -o FILE")
        with _writing(args.output):
            render.draw(graph, args.output, args.format)
        print(f"wrote {args.output}")
        return EXIT_OK
    text = {"text": render.to_text, "mermaid": render.to_mermaid, "dot": render.to_dot}[args.format](graph)
    if args.output:
        with _writing(args.output):
            args.output.write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _nodes(args: argparse.Namespace) -> int:
    from .runtime.describe import describe_kind
    from .runtime.errors import did_you_mean
    from .runtime.registry import default_registry

    registry = default_registry()
    kinds = registry.kinds()
    if args.kind:
        if args.kind not in registry:
            raise UserError(f"unknown node kind '{args.kind}'; {did_you_mean(args.kind, kinds)}")
        kinds = [args.kind]
    print("\n".join(describe_kind(registry.get(k)) for k in kinds), end="")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from .runtime.registry import default_registry
    from .runtime.schema import graph_json_schema

    text = json.dumps(graph_json_schema(default_registry()), indent=1)
    if args.output:
        with _writing(args.output):
            args.output.write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from .runtime.interrupts import run_interruptibly

    return run_interruptibly(lambda stop: _run_graph(args, stop))


def _run_graph(args: argparse.Namespace, stop: StopRequest) -> int:
    """The run itself, in a worker thread: it checks `stop` (Ctrl-C) where stopping leaves nothing half done."""
    if args.executor != "ray" and (args.ray_address or args.ray_num_gpus is not None):
        raise UserError("--ray-address and --ray-num-gpus apply only with --executor ray")
    from .runtime.device import choose_device
    from .runtime.inputs import parse_cli_inputs, prepare_inputs
    from .runtime.outputs import write_failure, write_outputs
    from .runtime.overrides import parse_overrides
    from .runtime.run_folder import RESULT_FILE, RunFolder, default_out_dir
    from .runtime.validate import load_graph
    from .runtime.writable import check_node_files

    graph = load_graph(args.graph, overrides={**_run_settings(args), **parse_overrides(args.set)})
    inputs = parse_cli_inputs(args.input)
    prepared = prepare_inputs(graph, inputs)  # bad input names and files are reported before anything loads
    if args.executor == "local":
        choose_device(args.device, what="--device cuda was given")  # no GPU: said before anything is built
    out_dir = args.out or default_out_dir(graph.name)
    check_node_files(graph)
    extra = {"seed": args.seed, "inputs": inputs}
    with RunFolder(out_dir) as folder:  # locked, and checked writable, before anything loads
        trace = folder.stage(args.trace, "the trace") if args.trace else None
        checkpoint = _checkpoint_for(graph, args.checkpoint)
        if checkpoint is not None:
            _checkpoint_fits(graph, checkpoint)  # config fields and tensor headers, before any weight loads
        stop.check()
        executor = _executor(args, graph, checkpoint)
        progress = _Progress(graph.name, enabled=sys.stderr.isatty())
        progress.say("loading")
        try:
            executor.load(stop=stop.event)
            run = executor.start(prepared, seed=args.seed)
            stop.on_stop(run.cancel)
            for event in run.events():
                progress.item(event.name)
            result = run.result()
        except NodeFailed as exc:
            if not stop.is_set():  # the folder says the run failed, rather than showing an earlier run's files
                write_failure(graph, exc, folder, extra)
                folder.commit()
            raise
        finally:
            progress.done()
            if args.executor == "ray":
                executor.shutdown()
        stop.check()
        with _writing(out_dir):
            summary = write_outputs(graph, result, folder, extra)
        if trace is not None:
            with _writing(args.trace):
                result.stats.write_trace(trace)
        stop.check()  # the last point to stop at: past it, the outputs land together
        with _writing(out_dir):
            folder.commit()
    for name, path in summary["files"].items():
        print(f"{name}: {path}")
    for name in summary["outputs"].keys() - summary["files"].keys():
        print(f"{name}: empty stream, no file written")
    for name, why in result.missing.items():
        print(f"{name}: not produced ({why})")
    print(f"result: {out_dir / RESULT_FILE}  ({result.stats.wall:.3f} s)")
    return EXIT_OK


def _executor(args: argparse.Namespace, graph: Any, checkpoint: Any) -> Any:
    if args.executor == "ray":
        from .runtime.executor_ray import RayExecutor

        return RayExecutor(graph, checkpoint=checkpoint, address=args.ray_address, num_gpus=args.ray_num_gpus,
                           device=args.device)
    from .runtime.executor_local import LocalExecutor

    return LocalExecutor(graph, device=args.device, checkpoint=checkpoint)


def _run_settings(args: argparse.Namespace) -> dict[tuple[str, str], Any]:
    """Flags that set a field on every node that has it (e.g. --greedy -> each decoder's `greedy`)."""
    from .runtime.overrides import ALL_NODES, Setting

    settings: dict[tuple[str, str], Any] = {}
    if args.greedy:
        settings[(ALL_NODES, "greedy")] = Setting(True, "--greedy")
    if args.max_new_tokens is not None:
        settings[(ALL_NODES, "max_new_tokens")] = Setting(args.max_new_tokens, "--max-new-tokens")
    if args.max_frames is not None:
        settings[(ALL_NODES, "max_frames")] = Setting(args.max_frames, "--max-frames")
    return settings


def _checkpoint_for(graph: Any, given: Path | None) -> Any:
    """The checkpoint a run uses: the one given, else (if any node loads weights) its kinds' tiny default."""
    if given is not None:
        return given
    from .runtime.checkpoint_needs import default_checkpoint_builder

    build = default_checkpoint_builder(graph)
    if build is None:
        return None
    print("no --checkpoint given: using the tiny random checkpoint (random weights, random outputs)",
          file=sys.stderr)
    return build()


def _make_checkpoint(args: argparse.Namespace) -> int:
    from .nodes.qwen2_5.presets import PRESETS as QWEN2_5_PRESETS

    if args.preset in QWEN2_5_PRESETS:
        from .nodes.qwen2_5.checkpoint_writer import write_checkpoint
    else:
        from .nodes.qwen3.checkpoint_writer import write_checkpoint
    if args.dir.exists() and (not args.dir.is_dir() or any(args.dir.iterdir())):
        raise UserError(f"'{args.dir}' already exists and is not an empty folder; choose a new folder")
    with _writing(args.dir):
        write_checkpoint(args.dir, args.preset, args.seed)
    print(f"wrote {args.preset} checkpoint (seed {args.seed}) to {args.dir}")
    return EXIT_OK


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A file the user named that cannot be written is a user error (exit 2), not an internal one."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"cannot write '{path}': {exc.strerror or exc}") from exc


class _Progress:
    """A one-line status on a terminal: outputs seen so far and elapsed time."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled = name, enabled
        self.counts: dict[str, int] = {}
        self.t0 = time.perf_counter()
        self.last = 0.0

    def say(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K[{self.name}] {text}  {time.perf_counter() - self.t0:.1f}s")
            sys.stderr.flush()

    def item(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        now = time.perf_counter()
        if now - self.last > 0.1:
            self.last = now
            self.say("running: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
