"""``python -m edgepose.runtime infer|verify|inspect|extract``: the box-side commands, without click.

Exit codes match ``edgepose``: 0 ok, 1 a failed verification, 2 bad input (one line naming the
file and the problem), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys

from edgepose.interrupt import terminate_as_interrupt
from edgepose.runtime.errors import EdgeposeError
from edgepose.runtime.parallel import DEFAULT_PARALLEL, PARALLEL_MODES

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def _providers(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edgepose.runtime",
        description="Run and verify .edgepose bundles with only numpy and onnxruntime installed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m edgepose.runtime verify wiflow-half.int8.edgepose\n"
               "  python -m edgepose.runtime infer wiflow-half.int8.edgepose --input windows.npy --output poses.jsonl\n"
               "  csi-reader | python -m edgepose.runtime infer wiflow-half.int8.edgepose --input - --output -\n")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("bundle", help="the .edgepose file")
        p.add_argument("--threads", type=int, default=None, help="cores a call may use (default: the CPUs this "
                       "process may use in batch mode, ONNX Runtime's choice in intra mode)")
        p.add_argument("--parallel", choices=list(PARALLEL_MODES), default=DEFAULT_PARALLEL,
                       help="batch: a call's windows run as one shard per thread at once; intra: one call on "
                            "ONNX Runtime's intra-op pool (default: %(default)s)")
        p.add_argument("--providers", default=None, help="comma-separated execution providers (default: best available)")

    p = sub.add_parser("infer", help="predict poses from windows, frames or a stream on stdin")
    common(p)
    p.add_argument("--input", "-i", required=True, help="windows.npy [N,C,T], frames.npy [F,C] or - (frames on stdin)")
    p.add_argument("--output", "-o", default="-", help="out.jsonl, out.npy or - (JSON lines on stdout)")
    p.add_argument("--hop", type=int, default=None, help="frames between poses when streaming (default: manifest)")
    p.add_argument("--ort", action="store_true", help="run the bundled ONNX Runtime format model")
    p.add_argument("--lenient", action="store_true", help="count malformed stdin lines as corrupt frames")

    p = sub.add_parser("verify", help="check hashes, golden vectors and latency on this box")
    common(p)
    p.add_argument("--seconds", type=float, default=2.0, help="time spent measuring latency")
    p.add_argument("--max-slowdown", type=float, default=None, help="fail when p50 is more than this × the manifest's")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")

    p = sub.add_parser("inspect", help="print the manifest of a verified bundle")
    p.add_argument("bundle")

    p = sub.add_parser("extract", help="verify a bundle and write its members into a new folder")
    p.add_argument("bundle")
    p.add_argument("dest")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (systemd stop) ends a run like Ctrl-C: file outputs are written atomically, so a
    # stopped run leaves none half-written
    try:
        with terminate_as_interrupt():
            return _dispatch(args)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("edgepose.runtime: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "infer":
        from edgepose.runtime.commands import infer, summary_line

        counts = infer(args.bundle, args.input, args.output, hop=args.hop, threads=args.threads,
                       providers=_providers(args.providers), ort_format=args.ort, lenient=args.lenient,
                       parallel=args.parallel)
        print(summary_line(counts, args.output), file=sys.stderr)
        return 0
    if args.command == "verify":
        from edgepose.runtime.commands import run_verify

        return run_verify(args.bundle, threads=args.threads, providers=_providers(args.providers), parallel=args.parallel,
                          seconds=args.seconds, max_slowdown=args.max_slowdown, as_json=args.json)
    if args.command == "inspect":
        from edgepose.runtime.bundle import Bundle

        print(json.dumps(Bundle.open(args.bundle).manifest, indent=2))
        return 0
    if args.command == "extract":
        from edgepose.runtime.bundle import extract

        for path in extract(args.bundle, args.dest):
            print(path)
        return 0
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
