"""`omnigraph caption`: list the inputs, open OUT (resuming it), run the job locally or on Ray Data, and write
OUT.summary.json, also when stopped by Ctrl-C (every record committed so far stays)."""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from ..runtime.errors import RunCancelled, UserError
from .graph_setup import caption_graph, sampling_of
from .inputs import Item, list_items
from .job import JobOptions
from .sink import RecordSink, check_out, side_file
from .summary import Tally, write_summary


def caption(args: argparse.Namespace, stop: Any) -> int:
    """The command, run in a worker thread (see runtime/interrupts.py); `stop` is set on Ctrl-C."""
    if args.executor != "ray" and (args.ray_address or args.workers is not None):
        raise UserError("--ray-address and --workers apply only with --executor ray")
    out = args.out
    check_out(out)
    companions = [out, side_file(out, ".errors.jsonl"), side_file(out, ".summary.json")]
    items = list_items(args.inputs, skip=companions)
    if not items:
        raise UserError(f"no audio or video files found in {', '.join(args.inputs)}")
    needs_text = args.prompt is not None or any(i.prompt is not None for i in items)
    graph = caption_graph(args.graph, greedy=args.greedy, max_new_tokens=args.max_new_tokens,
                          batch_size=args.batch_size, needs_text=needs_text)
    if args.executor == "local":
        from ..runtime.device import choose_device

        choose_device(args.device, what="--device cuda was given")
    options = JobOptions(args.batch_size, args.window_seconds, args.seed)
    if args.dry_run:
        from .dry_run import dry_run

        checkpoint = _checkpoint(graph, args.checkpoint)
        dry_run(items[:args.limit] if args.limit else items, graph, checkpoint, options, args.device, stop.event)
        return 0
    from .assemble import FileAssembler

    with RecordSink(out, resume=args.resume, retry_failed=args.retry_failed) as sink:
        checkpoint = _checkpoint(graph, args.checkpoint)
        model = {"graph": graph.name, "graph_file": str(graph.file), "checkpoint": str(checkpoint)}
        settings = {"window_seconds": args.window_seconds, "seed": args.seed, "prompt": args.prompt,
                    **sampling_of(graph)}
        assembler = FileAssembler(model, settings)
        todo = _todo(items, sink.records, args)
        tally = Tally(total=len(todo), skipped=len(items) - len(todo))
        interrupted = False
        try:
            _run_job(args, graph, checkpoint, todo, options, assembler, sink, tally, stop)
        except RunCancelled:
            interrupted = True
            raise
        finally:
            sink.close()
            write_summary(side_file(out, ".summary.json"), tally.summary(interrupted))
    summary = tally.summary(False)
    print(f"{out}: {summary['done']} ok, {summary['failed']} failed, {summary['skipped']} skipped; "
          f"{summary['audio_hours']:.4f} audio-h at {summary['files_per_s']:.3f} files/s "
          f"(summary: {side_file(out, '.summary.json')})")
    return 0


def _todo(items: list[Item], records: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[Item]:
    """The items to caption: those without a record, and (--retry-failed) those whose record is an error;
    with only --retry-failed, just the errors. --limit keeps the first N."""
    def wanted(item: Item) -> bool:
        record = records.get(item.id)
        if record is None:
            return not args.retry_failed or args.resume
        return args.retry_failed and record["status"] == "error"

    todo = [item for item in items if wanted(item)]
    return todo[:args.limit] if args.limit else todo


def _run_job(args: argparse.Namespace, graph: Any, checkpoint: Any, todo: list[Item], options: JobOptions,
             assembler: Any, sink: RecordSink, tally: Tally, stop: Any) -> None:
    from .progress import Progress

    progress = Progress(tally)
    lock = threading.Lock()

    def commit(record: dict[str, Any]) -> None:
        with lock:
            sink.commit(record)
            tally.add(record)
            progress.update()

    try:
        stop.check()
        if args.executor == "ray":
            from .ray_job import run_ray

            run_ray(graph, checkpoint, todo, options, assembler, commit, stop.event, address=args.ray_address,
                    workers=args.workers or 1, device=args.device)
        else:
            from ..runtime.executor_local import LocalExecutor
            from .job import run_local

            executor = LocalExecutor(graph, device=args.device, checkpoint=checkpoint)
            try:
                executor.load(stop=stop.event)
                run_local(executor, todo, options, assembler, commit, stop.event)
            finally:
                executor.shutdown()
    finally:
        progress.close()


def _checkpoint(graph: Any, given: Path | None) -> Any:
    """The checkpoint given (checked against the graph before anything loads), else the tiny default."""
    from ..runtime.checkpoint_check import check_checkpoint

    if given is None:
        from ..runtime.checkpoint_needs import default_checkpoint_builder

        build = default_checkpoint_builder(graph)
        if build is None:
            return None
        print("no --checkpoint given: using the tiny random checkpoint (random weights, random captions)",
              file=sys.stderr)
        given = build()
    check_checkpoint(graph, given)
    return given
