"""``tnseg-desktop models list | import FILE [--name N] | download NAME | verify | remove NAME | average FILE... --out OUT``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

from tnseg_desktop.model import registry
from tnseg_desktop.paths import user_models_dir


def _progress_printer(label: str) -> Callable[[int, int | None], None]:
    """Progress on stderr, at most a few updates a second, only on a terminal."""
    last = [0.0]
    interactive = sys.stderr.isatty()

    def report(done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not interactive or (now - last[0] < 0.25 and not finished):
            return
        last[0] = now
        pct = f"{100 * done / total:5.1f}%" if total else ""
        print(f"\r{label}: {registry.describe_size(done)} {pct}", end="\n" if finished else "", file=sys.stderr, flush=True)

    return report


def _rows() -> list[dict]:
    rows = []
    for name, e in registry.load_registry().items():
        path = registry.find_path(name)
        rows.append(
            {
                **e.to_json(),
                "status": registry.status(name),
                "path": str(path) if path else None,
                "installed_size": path.stat().st_size if path else None,
            }
        )
    return rows


def _print_table(rows: list[dict]) -> None:
    header = ("NAME", "KIND", "STATUS", "SIZE", "NEEDS", "LICENCE", "FILE")
    table = [header]
    for r in rows:
        size = r["installed_size"] if r["installed_size"] is not None else r["size"]
        licence = r["licence"] if len(r["licence"]) <= 24 else r["licence"][:21] + "..."
        table.append((r["name"], r["kind"], r["status"], registry.describe_size(size), ",".join(r["needs"]) or "-", licence or "-", r["file"]))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
    from tnseg_desktop.model.resolve import default_auto_model

    print(f"\nautomatic mask by default (segment, eval, the app): {default_auto_model()}")
    print(f"user model folder: {user_models_dir()}")


def _list(args: argparse.Namespace) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return 0


def _import(args: argparse.Namespace) -> int:
    entry, path = registry.import_file(args.file, name=args.name, progress=_progress_printer("importing"))
    print(f"installed {entry.name} -> {path}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from tnseg_desktop.model.download import download

    path = download(args.name, progress=_progress_printer(f"downloading {args.name}"))
    print(f"installed {args.name} -> {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    results = registry.verify()
    bad = 0
    for r in results:
        if r.status == registry.MISSING:
            continue
        note = f" ({r.detail})" if r.detail else ""
        print(f"{r.name}: {r.status}{note} {r.path}")
        bad += r.status == registry.CORRUPT
    if not any(r.status != registry.MISSING for r in results):
        print("no model files installed")
    if bad:
        print(f"tnseg-desktop: {bad} model file(s) damaged; remove and import them again.", file=sys.stderr)
        return 1
    return 0


def _remove(args: argparse.Namespace) -> int:
    # the store knows which version is in use; only this command glue asks it (the registry itself does not)
    from tnseg_desktop.store.annotation_store import active_version_refusal

    path = registry.remove(args.name, in_use=active_version_refusal)
    print(f"removed {args.name} ({path})")
    return 0


def _average(args: argparse.Namespace) -> int:
    from tnseg_desktop.model.lite_weights import average_lite, save_lite

    model = average_lite(list(args.files))
    out = save_lite(model, args.out, {"average_of": [Path(f).name for f in args.files]})
    print(f"wrote the mean of {len(args.files)} tnseg-lite weight files to {out}")
    return 0


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "average": _average,
    "list": _list,
    "import": _import,
    "download": _download,
    "verify": _verify,
    "remove": _remove,
}


def cmd_models(args: argparse.Namespace) -> int:
    return ACTIONS[args.models_command](args)
