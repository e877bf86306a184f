"""What a tnseg-lite network may look like: the one table the weights loader and the job-file check both use.

Settings read from a file (a weights file's metadata, a job file) are untrusted:
they are checked against these ranges before anything is built, so a file
claiming a 512-channel network or a 4096-pixel input is refused in
milliseconds instead of costing gigabytes. No torch here: the job check runs
before torch is imported.
"""

from __future__ import annotations

import math
from typing import Any

from tnseg_desktop.errors import UserFacingError

# downsampling stages of the U-Net: an input side must be a multiple of 2 ** (levels - 1)
SIZE_STEP = 32
MIN_SIZE, MAX_SIZE = 64, 512
CHANNELS = (4, 64)  # base_channels
HEAD_HIDDEN = (4, 256)
MULT = (1, 8)
LEVELS = (3, 7)


def check_input_size(value: Any, what: str, path: str | None = None) -> int:
    """An input side in [MIN_SIZE, MAX_SIZE] and a multiple of SIZE_STEP."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE <= value <= MAX_SIZE or value % SIZE_STEP:
        raise UserFacingError(f"{what} is {value!r}; it must be a multiple of {SIZE_STEP} from {MIN_SIZE} to {MAX_SIZE}.", path)
    return value


def _int_in(value: Any, lo: int, hi: int, what: str, path: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserFacingError(f"{what} is {value!r}; it must be a whole number from {lo} to {hi}.", path)
    return value


def check_lite_config(config: Any, path: str | None = None) -> dict[str, Any]:
    """The network settings of a tnseg-lite weights file, refused unless every one is in range."""
    if not isinstance(config, dict):
        raise UserFacingError("the weights file's network settings are not a JSON object.", path)
    unknown = sorted(set(config) - {"base_channels", "channel_mults", "head_hidden", "input_size"})
    if unknown:
        raise UserFacingError(f"the weights file names network settings tnseg-lite does not have ({', '.join(unknown)}).", path)
    out = {
        "base_channels": _int_in(config.get("base_channels", 32), *CHANNELS, "the network's base_channels", path),
        "head_hidden": _int_in(config.get("head_hidden", 64), *HEAD_HIDDEN, "the network's head_hidden", path),
        "input_size": check_input_size(config.get("input_size", 192), "the network's input_size", path),
    }
    mults = config.get("channel_mults", [1, 1, 2, 2, 4, 4])
    if not isinstance(mults, list) or not LEVELS[0] <= len(mults) <= LEVELS[1]:
        raise UserFacingError(f"the network's channel_mults is {mults!r}; it must list {LEVELS[0]} to {LEVELS[1]} levels.", path)
    out["channel_mults"] = [_int_in(m, *MULT, "a channel multiplier", path) for m in mults]
    if 2 ** (len(mults) - 1) > SIZE_STEP:
        raise UserFacingError(f"the network has {len(mults)} levels; at most {int(math.log2(SIZE_STEP)) + 1} are allowed.", path)
    return out
