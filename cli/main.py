"""The ``fervid`` command line.

Heavy libraries (TensorFlow, Ray, Qt) are imported inside each command, so ``fervid --help``
is instant and a command only pays for what it uses. Every user error becomes one line on
stderr and exit status 2; ``--json`` commands print exactly one JSON document on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


def _emit_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def cmd_predict(args: argparse.Namespace) -> int:
    from fervid.models.recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    results = [recognizer.recognise_file(path).to_dict() for path in args.images]
    if args.json:
        _emit_json(results)
    else:
        for result in results:
            print(f"{result['image']}: {len(result['faces'])} face(s)")
            for face in result["faces"]:
                print(f"  box={face['box']} {face['emotion']} ({face['confidence']:.2f})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fervid.models.classifier import EmotionClassifier
    from fervid.training.data import load_fer2013
    from fervid.training.evaluate import evaluate

    _check_png_destination(args.confusion_png, "--confusion-png")
    data = load_fer2013(args.data, usage=args.split)
    classifier = EmotionClassifier.load(args.model, flip_average=not args.no_flip)
    report = evaluate(classifier, data.pixels, data.labels)
    if args.confusion_png:
        from fervid.errors import FervidError
        from fervid.training.plots import plot_confusion

        title = f"{Path(args.data).name} {args.split or 'all rows'}: accuracy {report.accuracy:.4f}"
        try:
            plot_confusion(report.confusion, Path(args.confusion_png), title)
        except OSError as exc:
            raise FervidError(f"--confusion-png {args.confusion_png}: cannot write "
                              f"({exc.strerror or exc})") from None
    if args.json:
        _emit_json(report.to_dict())
    else:
        print(report.format_table())
    return 0


def _check_png_destination(path: Path | None, flag: str) -> None:
    """Refuse a PNG path that cannot be written before the minutes of work that precede writing it."""
    if path is None:
        return
    from fervid.errors import FervidError

    if path.suffix.lower() != ".png":
        raise FervidError(f"{flag} {path}: the file name must end in .png")
    if not path.parent.is_dir():
        raise FervidError(f"{flag} {path}: folder {path.parent} does not exist")


def cmd_train(args: argparse.Namespace) -> int:
    from fervid.errors import FervidError
    from fervid.training.config import TrainConfig

    config = TrainConfig(
        data=Path(args.data), ferplus=Path(args.ferplus) if args.ferplus else None,
        epochs=args.epochs, batch_size=args.batch_size, workers=args.workers,
        use_gpu=args.use_gpu, limit=args.limit, out=Path(args.out), width=args.width,
        learning_rate=args.lr, label_smoothing=args.label_smoothing,
        ferplus_weight=args.ferplus_weight, augment=args.augment, resume=not args.fresh)
    _check_train_config(config)
    if args.address and config.workers < 2:
        raise FervidError("--address needs --workers 2 or more (one worker trains in this process)")
    if config.workers > 1:
        from fervid.training.distributed import train_distributed

        if args.address:
            from fervid.services.service import prepare_address

            prepare_address(args.address)
        summary = train_distributed(config, address=args.address)
        print(f"best val_accuracy {summary['best_score']:.4f} after {summary['completed_epochs']} "
              f"epoch(s) on {config.workers} workers; model saved to {summary['best_model']}",
              file=sys.stderr)
    else:
        from fervid.training.trainer import train

        summary = train(config, log=lambda msg: print(msg, file=sys.stderr))
    if args.json:
        _emit_json(summary)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    import signal
    import time

    from fervid.services.config import load_config
    from fervid.services.service import check_ports, connect, format_status_line, start_service, stop_service

    config = load_config(args.config)
    address = args.address or config.ray.address
    duration = args.duration if args.duration is not None else config.duration_s
    if duration is not None and duration <= 0:
        from fervid.errors import FervidError

        raise FervidError("--duration must be positive")
    if address is None or not address.startswith("ray://"):
        check_ports(config)  # the publisher and metrics actors run on this node

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    started_ray = connect(address, config.ray.num_cpus)
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
        _emit_json(status)
    else:
        print(f"publisher {status['publisher']}, metrics {status['metrics']}, "
              f"{status['detectors']} detector(s), {status['inference_actors']} inference actor(s)")
        for stream in status["streams"]:
            print(format_status_line(stream))
        if not status["streams"]:
            print("no streams attached")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from fervid.errors import FervidError

    if (args.screenshot is None) != (args.frames is None):
        raise FervidError("--screenshot and --frames go together")
    if args.frames is not None and args.frames < 1:
        raise FervidError("--frames must be at least 1")
    if args.client_key is not None and args.server_key is None:
        raise FervidError("--client-key needs --server-key (the publisher's public key file)")
    if args.server_key is not None:
        from fervid.comms.curve import load_key_pair, load_public_key

        load_public_key(args.server_key)  # a bad key file is one line here, before any window
        if args.client_key is not None:
            load_key_pair(args.client_key)
    from fervid.gui.monitor import run_monitor

    return run_monitor(args.name, args.endpoint, args.screenshot, args.frames,
                       server_key=args.server_key, client_key=args.client_key)


def cmd_keys(args: argparse.Namespace) -> int:
    from fervid.comms.curve import generate_key_pair

    public, secret = generate_key_pair(args.dir, args.name)
    print(f"public key {public} (hand out: monitors' --server-key, or the publisher's authorized_clients folder)")
    print(f"secret key {secret} (keep private: publisher.curve.server_secret_key, or a monitor's --client-key)")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    from fervid.gui.app import run_app

    return run_app(args.image, args.screenshot)


def _check_train_config(config) -> None:
    from fervid.errors import FervidError

    for name in ("epochs", "batch_size", "workers"):
        if getattr(config, name) < 1:
            raise FervidError(f"--{name.replace('_', '-')} must be at least 1")
    if config.limit is not None and config.limit < 20:
        raise FervidError("--limit must be at least 20 rows (a validation slice is split off)")
    if config.width <= 0:
        raise FervidError("--width must be positive")


def build_parser() -> argparse.ArgumentParser:
    from fervid.models.classifier_paths import DEFAULT_MODEL_PATH

    parser = argparse.ArgumentParser(prog="fervid", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="find faces in images and name their expressions")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="a .keras weights file")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy of a model on a FER2013-format CSV")
    p.add_argument("--data", required=True, type=Path, help="CSV or CSV.gz in Kaggle fer2013 format")
    p.add_argument("--split", choices=("Training", "PublicTest", "PrivateTest"),
                   help="only rows with this Usage (default: every row)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    p.add_argument("--no-flip", action="store_true", help="do not average with the mirrored face")
    p.add_argument("--confusion-png", type=Path, help="also save the confusion matrix as a PNG")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train Mini-Xception (Ray Train when --workers > 1)")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--ferplus", type=Path, help="fer2013new.csv(.gz): blend FER+ votes into targets")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--use-gpu", action="store_true")
    p.add_argument("--address", help="with --workers >= 2: run on this Ray cluster ('auto', HOST:PORT) "
                                     "instead of a local Ray; --data and --out must then be on storage "
                                     "every node sees at the same path")
    p.add_argument("--limit", type=int, help="read at most this many Training rows")
    p.add_argument("--out", type=Path, default=Path("runs/latest"))
    p.add_argument("--width", type=float, default=1.0, help="Mini-Xception width multiplier")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ferplus-weight", type=float, default=0.5)
    p.add_argument("--augment", type=float, default=1.0, help="augmentation strength (0 = flips only)")
    p.add_argument("--fresh", action="store_true", help="ignore an interrupted run in --out")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("up", help="run the streaming service (Ctrl-C stops it)")
    p.add_argument("--config", type=Path, help="YAML config (default: the bundled sample clip)")
    p.add_argument("--address", help="join this Ray cluster ('auto', HOST:PORT, ray://HOST:PORT); "
                                     "default: the config's ray.address, else an embedded Ray")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
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

    p = sub.add_parser("monitor", help="live window for one stream of the running service (ZMQ)")
    p.add_argument("name", help="stream name")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="the service's ZMQ publisher")
    p.add_argument("--screenshot", type=Path, help="render offscreen, save the window as PNG and exit")
    p.add_argument("--frames", type=int, help="with --screenshot: frames to render first")
    p.add_argument("--server-key", type=Path, metavar="KEY",
                   help="the publisher's public key file (NAME.key) when it uses publisher.curve")
    p.add_argument("--client-key", type=Path, metavar="KEY_SECRET",
                   help="this monitor's key pair (NAME.key_secret), whose .key is in the publisher's "
                        "authorized_clients folder; default: a one-off key")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("keys", help="make a ZMQ CURVE key pair (NAME.key public, NAME.key_secret private)")
    p.add_argument("dir", type=Path, help="folder to write the two files to (created if missing)")
    p.add_argument("--name", default="fervid", help="file name stem, e.g. server or a monitor's name")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("app", help="desktop app: live camera or video, or upload an image")
    p.add_argument("--image", type=Path, help="open this image at start")
    p.add_argument("--screenshot", type=Path, help="save the window as PNG once the image is shown, and exit")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fervid.models.backend_env import TRAINING, SERVING, configure_tensorflow

    args = build_parser().parse_args(argv)
    # Before anything imports Keras; Ray workers started by this process inherit it.
    configure_tensorflow(TRAINING if args.command == "train" else SERVING)
    from fervid.errors import FervidError

    try:
        return int(args.func(args) or 0)
    except FervidError as exc:
        print(f"fervid {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"fervid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
