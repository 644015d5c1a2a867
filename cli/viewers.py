"""``fervid monitor``, ``fervid app`` and ``fervid keys``: the windows, and the keys a monitor uses.

Arguments are checked here before Qt starts (and, for ``monitor``, before the wait for frames):
a screenshot that cannot be written, or an image that cannot be read, is one line at once
instead of a window, Qt's messages and a failure at the end.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fervid.cli.checks import check_png_destination
from fervid.extras import GUI, require


def cmd_monitor(args: argparse.Namespace) -> int:
    from fervid.errors import FervidError

    require(GUI, "fervid monitor")
    if (args.screenshot is None) != (args.frames is None):
        raise FervidError("--screenshot and --frames go together")
    if args.client_key is not None and args.server_key is None:
        raise FervidError("--client-key needs --server-key (the publisher's public key file)")
    check_png_destination(args.screenshot, "--screenshot")
    if args.server_key is not None:
        from fervid.comms.curve import load_key_pair, load_public_key

        load_public_key(args.server_key)  # a bad key file is one line here, before any window
        if args.client_key is not None:
            load_key_pair(args.client_key)
    from fervid.gui.monitor import run_monitor

    run_monitor(args.name, args.endpoint, args.screenshot, args.frames,
                server_key=args.server_key, client_key=args.client_key)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    require(GUI, "fervid app")
    check_png_destination(args.screenshot, "--screenshot")
    if args.image is not None:
        from fervid.media.image_io import load_image

        load_image(args.image)  # missing, not an image, a bomb, a pipe: one line, no window
    from fervid.gui.app import run_app

    return run_app(args.image, args.screenshot)


def cmd_keys(args: argparse.Namespace) -> int:
    from fervid.comms.curve import generate_key_pair

    public, secret = generate_key_pair(args.dir, args.name)
    print(f"public key {public} (hand out: monitors' --server-key, or the publisher's authorized_clients folder)")
    print(f"secret key {secret} (keep private: publisher.curve.server_secret_key, or a monitor's --client-key)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``monitor``, ``keys`` and ``app``."""
    from fervid.comms.endpoints import DEFAULT_ENDPOINT

    p = sub.add_parser("monitor", help="live window for one stream of the running service (ZMQ)")
    p.add_argument("name", help="stream name")
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the service's ZMQ publisher, tcp://HOST:PORT")
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
