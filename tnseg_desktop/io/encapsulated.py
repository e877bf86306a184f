"""Where each frame's compressed bytes lie in encapsulated pixel data.

PS3.5 A.4: the value is a sequence of items (FFFE,E000): first the Basic
Offset Table, then fragments, ended by (FFFE,E0DD). Only the item headers are
read at open time, so indexing a long loop costs microseconds per frame and
each frame can then be decoded on its own.
"""

from __future__ import annotations

import struct
from typing import Sequence

ITEM = 0xE000FFFE  # (FFFE,E000) read as one little-endian uint32
SEQUENCE_DELIMITER = 0xE0DDFFFE
_HEADER = struct.Struct("<II")

JPEG_SOI = b"\xff\xd8"
J2K_SOC = b"\xff\x4f\xff\x51"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "


class EncapsulationError(ValueError):
    """The item structure is broken or ends early."""


Fragment = tuple[int, int]  # (offset of the value in the buffer, length)


def read_items(buf: Sequence[int] | bytes | memoryview, start: int, end: int) -> tuple[list[int], list[Fragment]]:
    """(basic offset table, fragments) of encapsulated data in buf[start:end].

    Raises EncapsulationError when an item header is missing, unknown, or an
    item runs past `end` (a truncated file).
    """
    pos = start
    items: list[Fragment] = []
    while True:
        if pos + 8 > end:
            raise EncapsulationError("encapsulated pixel data ends before its sequence delimiter")
        tag, length = _HEADER.unpack_from(buf, pos)  # type: ignore[arg-type]
        pos += 8
        if tag == SEQUENCE_DELIMITER:
            break
        if tag != ITEM:
            raise EncapsulationError(f"unexpected tag {tag:#010x} inside encapsulated pixel data")
        if length == 0xFFFFFFFF or pos + length > end:
            raise EncapsulationError("an encapsulated fragment runs past the end of the file")
        items.append((pos, length))
        pos += length
    if not items:
        raise EncapsulationError("encapsulated pixel data has no basic offset table item")
    bot_pos, bot_len = items[0]
    if bot_len % 4:
        raise EncapsulationError("the basic offset table length is not a multiple of 4")
    offsets = list(struct.unpack_from(f"<{bot_len // 4}I", buf, bot_pos)) if bot_len else []  # type: ignore[arg-type]
    return offsets, items[1:]


def _starts_codestream(buf: Sequence[int] | bytes | memoryview, fragment: Fragment) -> bool:
    pos, length = fragment
    head = bytes(buf[pos : pos + min(length, 12)])
    return head.startswith(JPEG_SOI) or head.startswith(J2K_SOC) or head.startswith(JP2_SIGNATURE)


def frame_fragments(
    buf: Sequence[int] | bytes | memoryview,
    offsets: list[int],
    fragments: list[Fragment],
    number_of_frames: int,
    extended: tuple[list[int], list[int]] | None = None,
) -> list[list[Fragment]]:
    """Group fragments into frames: by the extended or basic offset table when
    present, one fragment per frame when the counts match, else by codestream
    start markers (JPEG SOI / JPEG 2000 SOC)."""
    if not fragments:
        raise EncapsulationError("encapsulated pixel data holds no fragments")
    first_item = fragments[0][0] - 8  # offsets count from the first fragment's item tag

    if extended is not None and len(extended[0]) >= number_of_frames:
        frames = []
        by_start = {pos - 8 - first_item: (pos, length) for pos, length in fragments}
        for off, length in zip(extended[0][:number_of_frames], extended[1][:number_of_frames]):
            frag = by_start.get(int(off))
            if frag is None:
                raise EncapsulationError("the extended offset table points between fragments")
            frames.append([(frag[0], min(int(length), frag[1]))])
        return frames

    if offsets and (len(offsets) > 1 or number_of_frames == 1):
        if len(offsets) < number_of_frames:
            raise EncapsulationError("the basic offset table lists fewer frames than the header says")
        starts = [first_item + o for o in offsets[:number_of_frames]]
        frames = [[] for _ in starts]
        k = -1
        for pos, length in fragments:
            while k + 1 < len(starts) and pos - 8 >= starts[k + 1]:
                k += 1
            if k < 0:
                raise EncapsulationError("the basic offset table does not match the fragments")
            frames[k].append((pos, length))
        if any(not f for f in frames):
            raise EncapsulationError("the basic offset table points past the fragments")
        return frames

    if number_of_frames == 1:
        return [list(fragments)]
    if len(fragments) == number_of_frames:
        return [[f] for f in fragments]
    if len(fragments) < number_of_frames:
        raise EncapsulationError(f"the header says {number_of_frames} frames but the data holds only {len(fragments)}")
    frames = []
    for frag in fragments:
        if _starts_codestream(buf, frag) or not frames:
            frames.append([frag])
        else:
            frames[-1].append(frag)
    if len(frames) < number_of_frames:
        raise EncapsulationError(f"the header says {number_of_frames} frames but the data holds only {len(frames)}")
    return frames[:number_of_frames]


def frame_bytes(buf: Sequence[int] | bytes | memoryview, fragments: list[Fragment]) -> bytes:
    if len(fragments) == 1:
        pos, length = fragments[0]
        return bytes(buf[pos : pos + length])
    return b"".join(bytes(buf[pos : pos + length]) for pos, length in fragments)
