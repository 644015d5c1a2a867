"""``fervid train`` (Mini-Xception in this process, or on Ray Train with ``--workers`` 2 or more) and
``fervid ensemble`` (trained models saved as one file that averages them)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fervid.cli.output import emit_json

FLAGS = {"learning_rate": "--lr"}
"""Settings whose flag is not ``--`` and the key with dashes."""


def flag_for(key: str) -> str:
    """The ``fervid train`` flag that sets a ``TrainConfig`` key (what error messages name)."""
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def cmd_train(args: argparse.Namespace) -> int:
    from fervid.errors import FervidError
    from fervid.extras import TRAINING, require
    from fervid.training.config import TrainConfig

    require(TRAINING, "fervid train")
    config = TrainConfig.parse({
        "data": args.data, "ferplus": args.ferplus, "epochs": args.epochs, "batch_size": args.batch_size,
        "workers": args.workers, "use_gpu": args.use_gpu, "limit": args.limit, "out": args.out,
        "width": args.width, "learning_rate": args.lr, "label_smoothing": args.label_smoothing,
        "ferplus_weight": args.ferplus_weight, "augment": args.augment, "erasing": args.erasing,
        "mixup": args.mixup, "teacher": args.teacher, "teacher_weight": args.teacher_weight,
        "teacher_temperature": args.teacher_temperature, "resume": not args.fresh,
    }, name=flag_for)
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
        emit_json(summary)
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from fervid.errors import FervidError
    from fervid.models.ensemble import save_ensemble

    if args.out.suffix != ".keras":
        raise FervidError(f"--out {args.out}: the ensemble is a Keras file and must end in .keras")
    if args.out.exists() and not args.force:
        raise FervidError(f"--out {args.out} already exists (pass --force to replace it)")
    parameters = save_ensemble(args.models, args.out)
    summary = {"out": str(args.out), "members": [str(path) for path in args.models], "parameters": parameters}
    print(f"saved the mean of {len(args.models)} models ({parameters:,} parameters) to {args.out}",
          file=sys.stderr)
    if args.json:
        emit_json(summary)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``train``; ranges are checked by ``TrainConfig``, which names the flag."""
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
    p.add_argument("--limit", type=int, help="read at most this many Training rows (at least 20)")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), help="the run folder (created if missing)")
    p.add_argument("--width", type=float, default=1.0, help="Mini-Xception width multiplier (0 < W <= 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (0 < LR <= 1)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="0 <= S < 1")
    p.add_argument("--ferplus-weight", type=float, default=0.5, help="share of the FER+ votes, 0..1")
    p.add_argument("--augment", type=float, default=1.0, help="augmentation strength, 0..3 (0 = flips only)")
    p.add_argument("--erasing", type=float, default=0.0,
                   help="probability of random erasing per crop, 0..1 (0 = off)")
    p.add_argument("--mixup", type=float, default=0.0, help="mixup's Beta parameter, e.g. 0.2 (0 = off)")
    p.add_argument("--teacher", type=Path, metavar="MODEL",
                   help="distil this .keras model (one or a fervid ensemble): its probabilities on each "
                        "training image are blended into the image's target")
    p.add_argument("--teacher-weight", type=float, default=0.7,
                   help="share of the teacher's probabilities in each target, 0..1 (with --teacher)")
    p.add_argument("--teacher-temperature", type=float, default=1.0,
                   help="soften the teacher's probabilities: softmax(log(p) / T), 0.1..20 (with --teacher)")
    p.add_argument("--fresh", action="store_true", help="ignore an interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensemble", help="save several trained models as one .keras file that averages them "
                                        "(accepted wherever a model file is)")
    p.add_argument("models", nargs="+", type=Path, metavar="MODEL", help="two or more .keras files")
    p.add_argument("--out", required=True, type=Path, help="the ensemble's .keras file")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    p.set_defaults(func=cmd_ensemble)
