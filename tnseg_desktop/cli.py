"""One entry point for the GUI and every headless command (DESIGN.md section 5).

The parser lives here; each command's work lives in its layer, imported only
when that command runs so that ``tnseg-desktop info`` does not import torch or
Qt. Errors a user can cause print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from typing import Callable, Sequence

from tnseg_desktop import __version__
from tnseg_desktop.errors import UserFacingError, printable

# command name -> "module:function"; the function takes the parsed namespace and returns an exit code
HANDLERS: dict[str, str] = {
    "gui": "tnseg_desktop.ui.app:run_gui",
    "self-test": "tnseg_desktop.selftest:run_self_test",
    "info": "tnseg_desktop.io.commands:cmd_info",
    "segment": "tnseg_desktop.engine.segment_command:cmd_segment",
    "eval": "tnseg_desktop.training.commands:cmd_eval",
    "train": "tnseg_desktop.training.commands:cmd_train",
    "bench": "tnseg_desktop.bench_runner:run_bench",
    "eval-interactive": "tnseg_desktop.training.interactive_commands:cmd_eval_interactive",
    "models": "tnseg_desktop.model.commands:cmd_models",
    "export": "tnseg_desktop.store.commands:cmd_export",
    "store": "tnseg_desktop.store.commands:cmd_store",
}

DEVICE_CHOICES = ["auto", "cpu", "cuda"]


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present and working), cpu, cuda or cuda:N")


MODEL_HELP = "model name or weights file (default: the app's automatic model, as `models list` names it)"


def build_command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tnseg-desktop", description="Thyroid nodule segmentation for ultrasound cine loops.")
    parser.add_argument("--version", action="version", version=f"tnseg-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="what the loader sees in a DICOM file, folder or image")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_common(p)

    p = sub.add_parser("segment", help="write a nodule mask per frame")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--prompt", default=None)
    p.add_argument("--format", choices=["png", "seg"], default="png")
    p.add_argument("--keep-names", action="store_true",
                   help="name each output folder and SEG after its input file (which often carries the patient's name "
                        "or ID) instead of the de-identified study key")
    _add_device(p)
    _add_common(p)

    p = sub.add_parser("eval", help="Dice and IoU of a model on an images/ masks/ folder")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--prompt", default=None)
    p.add_argument("--json", required=True, dest="json_out")
    p.add_argument("--tta", action="store_true", help="average with the horizontally flipped prediction")
    _add_device(p)
    _add_common(p)

    p = sub.add_parser("eval-interactive", help="clicks needed to reach an IoU (NoC) with simulated clicks")
    p.add_argument("--data", required=True)
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--refiner", default="auto", help="refiner name; 'auto' (default) is the one the app uses")
    p.add_argument("--start", choices=["empty", "auto", "box"], default="auto", help="box: the true box moved by a seeded ±10%% per side, counted as 2 clicks")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--json", required=True, dest="json_out")
    _add_device(p)
    _add_common(p)

    p = sub.add_parser("train", help="train or fine-tune a model on images/ masks/ folders")
    p.add_argument("--data", action="append", required=True, help="training folder (repeatable)")
    p.add_argument("--gland", action="append", default=[], help="thyroid-gland folder used as a second task (repeatable)")
    p.add_argument("--val", required=True)
    p.add_argument("--base", default=None, help="start from this model name or weights file")
    p.add_argument("--out", required=True, help="name (or .safetensors path) of the trained model")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None)
    budget.add_argument("--steps", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="training resolution (square)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=None)
    p.add_argument("--p-auto", type=float, default=None, help="share of samples trained as automatic masks (default 0.5)")
    p.add_argument("--object-crop", type=float, default=None, help="share of refinement samples zoomed in on the object as the refiner does (default 0)")
    p.add_argument("--self-prior", type=float, default=None, help="share of refinement samples that start from the model's own automatic mask (default 0)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 100)")
    p.add_argument("--click-rounds", type=int, default=None, help="most simulated click rounds before a refinement sample (0..N, default 2)")
    p.add_argument("--ema", type=float, default=None, help="validate and keep a moving average of the weights with this decay, e.g. 0.99 (default off)")
    p.add_argument("--hard-weighting", type=float, default=None, help="draw frames the starting model segments badly more often: weight 1 + K * (1 - its Dice) (default 0)")
    p.add_argument("--snapshots", default=None, help="folder: also save the weights at every validation")
    p.add_argument("--resume", default=None, help="checkpoint written by an interrupted run")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    _add_device(p)
    _add_common(p)

    p = sub.add_parser("models", help="list, import, download, verify, remove or average model weights")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    m = msub.add_parser("list")
    m.add_argument("--json", action="store_true")
    _add_common(m)
    m = msub.add_parser("import")
    m.add_argument("file")
    m.add_argument("--name", default=None, help="registry entry (found by checksum when omitted)")
    _add_common(m)
    m = msub.add_parser("download")
    m.add_argument("name")
    _add_common(m)
    m = msub.add_parser("verify")
    _add_common(m)
    m = msub.add_parser("remove")
    m.add_argument("name")
    _add_common(m)
    m = msub.add_parser("average", help="mean of several tnseg-lite weight files (snapshots of one run)")
    m.add_argument("files", nargs="+")
    m.add_argument("--out", required=True)
    _add_common(m)
    _add_common(p)

    p = sub.add_parser("bench", help="timing benchmarks of loading and the models")
    p.add_argument("--json", required=True, dest="json_out")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    _add_device(p)
    _add_common(p)

    p = sub.add_parser("export", help="export a stored study's masks")
    p.add_argument("--study", required=True)
    p.add_argument("--format", choices=["png", "seg", "training", "csv"], required=True)
    p.add_argument("--out", required=True)
    _add_common(p)

    p = sub.add_parser("store", help="the annotation store")
    ssub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    s = ssub.add_parser("info")
    s.add_argument("--json", action="store_true")
    _add_common(s)
    s = ssub.add_parser("restore", help="put the last good backup in place of a damaged or missing database")
    s.add_argument("--backup", default=None, help="this backup file instead of the newest good one")
    _add_common(s)
    _add_common(p)
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tnseg-desktop",
        description="Open the GUI, or run a command: " + ", ".join(sorted(k for k in HANDLERS if k not in ("gui", "self-test"))),
    )
    parser.add_argument("path", nargs="?", help="DICOM file, folder or image to open")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the main window with PATH loaded to a PNG, then exit")
    parser.add_argument("--self-test", action="store_true", help="headless smoke test; prints PASS or FAIL")
    parser.add_argument("--version", action="version", version=f"tnseg-desktop {__version__}")
    _add_common(parser)
    return parser


def _resolve(spec: str) -> Callable[[argparse.Namespace], int]:
    module_name, func_name = spec.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def parse(argv: Sequence[str]) -> tuple[str, argparse.Namespace]:
    argv = list(argv)
    commands = build_command_parser()
    if argv and argv[0] in HANDLERS and argv[0] not in ("gui", "self-test"):
        args = commands.parse_args(argv)
        if hasattr(args, "model") and args.model is None:
            from tnseg_desktop.model.resolve import default_auto_model

            args.model = default_auto_model()
        return args.command, args
    if argv and argv[0] in ("-h", "--help"):
        build_gui_parser().print_help()
        print()
        commands.print_help()
        raise SystemExit(0)
    args = build_gui_parser().parse_args(argv)
    return ("self-test" if args.self_test else "gui"), args


def _route_library_warnings(debug: bool) -> None:
    """Python warnings (pydicom's "Invalid value for VR DA" on a non-conformant header, torch's notices) go to
    the log, not raw onto stderr, whose lines are the command's own; ``--debug`` shows them."""
    logging.captureWarnings(True)
    target = logging.getLogger("py.warnings")
    if debug:
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.DEBUG)
        return
    target.propagate = False
    if not target.handlers:
        target.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    name, args = parse(argv)
    debug = bool(getattr(args, "debug", False))
    _route_library_warnings(debug)
    try:
        return int(_resolve(HANDLERS[name])(args) or 0)
    except UserFacingError as exc:
        if debug:
            traceback.print_exc()
        print(f"tnseg-desktop: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tnseg-desktop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        else:
            msg = " ".join(str(exc).split()) or type(exc).__name__
            print(f"tnseg-desktop: internal error ({type(exc).__name__}): {printable(msg)} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
