"""``fervid up``, ``attach``, ``detach`` and ``status``: run the streaming service and steer it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fervid.cli.checks import positive_seconds
from fervid.cli.output import emit_json


def cmd_up(args: argparse.Namespace) -> int:
    import signal
    import time

    from fervid.services.config import load_config
    from fervid.services.service import check_ports, connect, format_status_line, start_service, stop_service

    config = load_config(args.config)
    address = args.address or config.ray.address
    duration = args.duration if args.duration is not None else config.duration_s
    if address is None or not address.startswith("ray://"):
        check_ports(config)  # the publisher and metrics actors run on this node

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    started_ray = connect(address, config.ray.num_cpus)
    # Both installed explicitly, after Ray's start-up (which sets its own): a background job of
    # a non-interactive shell starts with SIGINT ignored, and Python then leaves it ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    controller = None
    try:
        import ray

        where = "embedded Ray" if started_ray else f"Ray at {address}"
        print(f"fervid up: starting {len(config.streams)} stream(s) on {where} "
              f"(Ray address {ray.get_runtime_context().gcs_address})", file=sys.stderr, flush=True)
        controller = start_service(config)
        status = ray.get(controller.status.remote())
        print(f"fervid up: publishing on {status['publisher']}, metrics at {status['metrics']}, "
              f"{status['detectors']} detector(s), {status['inference_actors']} inference actor(s); "
              "Ctrl-C stops", file=sys.stderr, flush=True)
        start = time.monotonic()
        deadline = start + duration if duration else None
        while True:
            now = time.monotonic()
            wait = config.status_interval_s if deadline is None else min(config.status_interval_s, deadline - now)
            if wait > 0:
                time.sleep(wait)
            elapsed = time.monotonic() - start
            for stream in ray.get(controller.status.remote(), timeout=30)["streams"]:
                print(f"[{elapsed:6.1f}s] {format_status_line(stream)}", flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        print("fervid up: stopping", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if controller is not None:
            stop_service(controller)
        if started_ray:
            import ray

            ray.shutdown()
    print("fervid up: stopped", file=sys.stderr, flush=True)
    return 0


def _controller(args: argparse.Namespace):
    from fervid.services.service import connect, find_controller

    connect(args.address)
    return find_controller()


def cmd_attach(args: argparse.Namespace) -> int:
    from fervid.services.service import unwrap

    stream = {"name": args.name, "source": args.source, "loop": args.loop, "pace": not args.no_pace}
    if args.fps is not None:
        stream["fps"] = args.fps
    result = unwrap(_controller(args).attach.remote(stream), timeout=120)
    print(f"attached {result['name']} ({result['source']})")
    return 0


def cmd_detach(args: argparse.Namespace) -> int:
    from fervid.services.service import format_status_line, unwrap

    final = unwrap(_controller(args).detach.remote(args.name), timeout=120)
    print(f"detached {format_status_line(final) if 'state' in final else args.name}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from fervid.services.service import format_status_line, unwrap

    status = unwrap(_controller(args).status.remote(), timeout=60)
    if args.json:
        emit_json(status)
    else:
        print(f"publisher {status['publisher']}, metrics {status['metrics']}, "
              f"{status['detectors']} detector(s), {status['inference_actors']} inference actor(s)")
        for stream in status["streams"]:
            print(format_status_line(stream))
        if not status["streams"]:
            print("no streams attached")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``up``, ``attach``, ``detach`` and ``status``."""
    p = sub.add_parser("up", help="run the streaming service (Ctrl-C or SIGTERM stops it)")
    p.add_argument("--config", type=Path, help="YAML config (default: the bundled sample clip)")
    p.add_argument("--address", help="join this Ray cluster ('auto', HOST:PORT, ray://HOST:PORT); "
                                     "default: the config's ray.address, else an embedded Ray")
    p.add_argument("--duration", type=positive_seconds,
                   help="stop after this many seconds (default: the config's duration_s, else run until Ctrl-C)")
    p.set_defaults(func=cmd_up)

    address_help = "Ray cluster of the running service (default: auto, or $RAY_ADDRESS)"
    p = sub.add_parser("attach", help="add a stream to the running service")
    p.add_argument("source", help="video file, rtsp:// or http(s):// URL, or camera index")
    p.add_argument("--name", required=True, help="stream name (ZMQ topic, metrics label)")
    p.add_argument("--loop", action="store_true", help="files: start again at the end")
    p.add_argument("--no-pace", action="store_true", help="files: read as fast as processed")
    p.add_argument("--fps", type=float, help="files: pace at this rate")
    p.add_argument("--address", default="auto", help=address_help)
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("detach", help="remove a stream from the running service")
    p.add_argument("name")
    p.add_argument("--address", default="auto", help=address_help)
    p.set_defaults(func=cmd_detach)

    p = sub.add_parser("status", help="state of every stream of the running service")
    p.add_argument("--json", action="store_true")
    p.add_argument("--address", default="auto", help=address_help)
    p.set_defaults(func=cmd_status)
