"""``fervid predict`` and ``fervid evaluate``: the shipped model on still images and labelled crops."""
from __future__ import annotations

import argparse
from pathlib import Path

from fervid.cli.checks import check_png_destination
from fervid.cli.output import EXIT_USER_ERROR, emit_json, print_error


def cmd_predict(args: argparse.Namespace) -> int:
    """Every image gets its entry: faces, or the reason it could not be read.

    One bad file among many must not throw away the work done on the others, so a bad image is
    one line on stderr and an ``{"image", "error"}`` entry, and the exit status says (2) that
    something failed.
    """
    from fervid.errors import ImageLoadError
    from fervid.models.recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    results: list[dict] = []
    failed = 0
    for path in args.images:
        try:
            result = recognizer.recognise_file(path).to_dict()
        except ImageLoadError as exc:
            failed += 1
            print_error("predict", exc)
            results.append({"image": str(path), "error": str(exc)})
            continue
        results.append(result)
        if not args.json:
            print(f"{result['image']}: {len(result['faces'])} face(s)", flush=True)
            for face in result["faces"]:
                print(f"  box={face['box']} {face['emotion']} ({face['confidence']:.2f})", flush=True)
    if args.json:
        emit_json(results)
    return EXIT_USER_ERROR if failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fervid.models.classifier import EmotionClassifier
    from fervid.training.data import load_fer2013
    from fervid.training.evaluate import evaluate

    check_png_destination(args.confusion_png, "--confusion-png")
    if args.confusion_png:
        from fervid.extras import TRAINING, require

        require(TRAINING, "fervid evaluate --confusion-png")
    if args.validation_slice:
        from fervid.training.config import TrainConfig
        from fervid.training.data import validation_mask

        # The slice every `fervid train` run holds out with its default settings: where models are chosen.
        defaults = TrainConfig.model_fields
        data = load_fer2013(args.data, usage="Training")
        data = data.select(validation_mask(data.labels, defaults["validation_fraction"].default,
                                           defaults["seed"].default))
        split = "validation slice of Training"
    else:
        data = load_fer2013(args.data, usage=args.split)
        split = args.split or "all rows"
    classifier = EmotionClassifier.load(args.model, flip_average=not args.no_flip)
    report = evaluate(classifier, data.pixels, data.labels)
    if args.confusion_png:
        from fervid.errors import FervidError
        from fervid.training.plots import plot_confusion

        title = f"{Path(args.data).name} {split}: accuracy {report.accuracy:.4f}"
        try:
            plot_confusion(report.confusion, Path(args.confusion_png), title)
        except OSError as exc:
            raise FervidError(f"--confusion-png {args.confusion_png}: cannot write "
                              f"({exc.strerror or exc})") from None
    if args.json:
        emit_json(report.to_dict())
    else:
        print(report.format_table())
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``predict`` and ``evaluate``."""
    from fervid.models.classifier_paths import DEFAULT_MODEL_PATH

    p = sub.add_parser("predict", help="find faces in images and name their expressions")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="a .keras weights file")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (an image that cannot be read gets an \"error\" entry)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="accuracy of a model on a FER2013-format CSV")
    p.add_argument("--data", required=True, type=Path, help="CSV or CSV.gz in Kaggle fer2013 format")
    rows = p.add_mutually_exclusive_group()
    rows.add_argument("--split", metavar="USAGE",
                      help="only rows whose Usage column is USAGE: Training, PublicTest or PrivateTest in "
                           "Kaggle's file, any name in files of your own (default: every row)")
    rows.add_argument("--validation-slice", action="store_true",
                      help="only the Training rows that fervid train holds out to choose models (a fixed, "
                           "stratified 10%%, seed 2013): select here, report on a split never used")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    p.add_argument("--no-flip", action="store_true", help="do not average with the mirrored face")
    p.add_argument("--confusion-png", type=Path, help="also save the confusion matrix as a PNG")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (recall of a class without samples: null)")
    p.set_defaults(func=cmd_evaluate)
