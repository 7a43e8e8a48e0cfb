"""`docklock logs SERVICE [--replica N] [-f] [--tail N] [--timestamps]`.

A Service's or Job's container output, stdout to stdout and stderr to stderr. Without
--replica every replica is shown, interleaved, each line prefixed `api-1 | ` as docker
compose does; -f follows until Ctrl-C or until the containers stop. The engine
(docklock.engine.verbs.logs) finds the containers and streams the lines.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from docklock.cli._common import Output, add_cue_option
from docklock.errors import EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from docklock.engine.verbs import LogLine


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "logs", parents=[common], help="a service's or job's container output",
        description="Print the output of a Service's replicas (interleaved, each line "
                    "prefixed with its replica as `api-1 | `) or of one replica, or of a "
                    "Job's container. stdout and stderr stay apart.")
    p.add_argument("target", metavar="SERVICE",
                   help="a Service or Job: `api`, `Job/report` or `Service/default/api`")
    add_target_args(p)
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new lines until Ctrl-C or the containers stop")
    p.add_argument("--tail", type=int, default=None, metavar="N",
                   help="only the last N lines of each container")
    p.add_argument("--timestamps", action="store_true", help="show Podman's timestamps")
    add_cue_option(p)
    p.set_defaults(handler=cmd_logs)


def add_target_args(p: argparse.ArgumentParser) -> None:
    """--replica and -n, shared by logs, exec and restart."""
    p.add_argument("--replica", type=int, default=None, metavar="N",
                   help="only replica N (numbered from 1, as in the container names)")
    p.add_argument("-n", "--namespace", default=None,
                   help="namespace of a bare name (default: default)")


def write_bytes(stream: TextIO, data: bytes) -> None:
    """Bytes to a text stream's buffer as they are (no decoding), flushed."""
    buffer = getattr(stream, "buffer", None)
    stream.flush()
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()


def format_line(line: LogLine, *, prefix: bool, timestamps: bool, width: int = 0) -> bytes:
    """The bytes printed for one log line (pure): `api-1 | ` prefix, timestamp."""
    head = ""
    if prefix:
        head = f"{line.label.ljust(width)} | "
    if timestamps and line.time:
        head += f"{line.time} "
    return head.encode() + line.data


def cmd_logs(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.context import Context
    from docklock.engine.verbs import LogsOptions, logs

    ctx = Context.find(getattr(args, "directory", None),
                       podman_url=getattr(args, "podman_url", None), cue=args.cue)
    options = LogsOptions(replica=args.replica, follow=args.follow, tail=args.tail,
                          timestamps=args.timestamps, namespace=args.namespace)
    prefix = args.replica is None
    widths: dict[str, int] = {"w": 0}

    def on_line(line: LogLine) -> None:
        widths["w"] = max(widths["w"], len(line.label))
        stream = out.stderr if line.stream == 2 else out.stdout
        write_bytes(stream, format_line(line, prefix=prefix, timestamps=args.timestamps,
                                        width=widths["w"]))

    try:
        logs(ctx, args.target, options, on_line=on_line)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK
