"""Render a terminal capture (`tmux capture-pane -p -e`: text with ANSI colours) as a PNG.

Used for the editor screenshots in docs/img/ (docs/editor.md says how they were taken):

    python tools/ansi_png.py capture.ansi docs/img/out.png [more.ansi ...]

Several captures are stacked, one under the other, with a gap. Needs Pillow.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
BG = (30, 30, 30)
FG = (220, 220, 220)
_BASE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188), (17, 168, 205),
         (229, 229, 229)]
_BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214),
           (41, 184, 219), (255, 255, 255)]
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
Colour = tuple[int, int, int]
Cell = tuple[str, Colour, Colour, bool]


def xterm256(n: int) -> Colour:
    """The RGB of an xterm 256-colour index."""
    if n < 8:
        return _BASE[n]
    if n < 16:
        return _BRIGHT[n - 8]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
    v = 8 + (n - 232) * 10
    return v, v, v


def _apply(codes: list[int], fg: Colour, bg: Colour, bold: bool) -> tuple[Colour, Colour, bool]:
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            fg, bg, bold = FG, BG, False
        elif c == 1:
            bold = True
        elif c == 22:
            bold = False
        elif 30 <= c <= 37:
            fg = _BASE[c - 30]
        elif 90 <= c <= 97:
            fg = _BRIGHT[c - 90]
        elif 40 <= c <= 47:
            bg = _BASE[c - 40]
        elif 100 <= c <= 107:
            bg = _BRIGHT[c - 100]
        elif c == 39:
            fg = FG
        elif c == 49:
            bg = BG
        elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
            if c == 38:
                fg = xterm256(codes[i + 2])
            else:
                bg = xterm256(codes[i + 2])
            i += 2
        i += 1
    return fg, bg, bold


def cells(text: str) -> list[list[Cell]]:
    """The capture as rows of (character, foreground, background, bold)."""
    rows: list[list[Cell]] = []
    fg, bg, bold = FG, BG, False
    for line in text.splitlines():
        row: list[Cell] = []
        pos = 0
        for m in _SGR.finditer(line):
            row.extend((ch, fg, bg, bold) for ch in line[pos:m.start()])
            fg, bg, bold = _apply([int(x) for x in m.group(1).split(";") if x] or [0], fg, bg, bold)
            pos = m.end()
        row.extend((ch, fg, bg, bold) for ch in line[pos:])
        rows.append(row)
    return rows


def render(captures: list[str], out: Path) -> None:
    """Draw the captures, stacked, into a PNG."""
    font, bold_font = ImageFont.truetype(FONT, SIZE), ImageFont.truetype(BOLD, SIZE)
    width = int(font.getlength("M"))
    height = SIZE + 4
    grids = [cells(c) for c in captures]
    cols = max((len(r) for g in grids for r in g), default=1)
    lines = sum(len(g) for g in grids) + len(grids) - 1
    img = Image.new("RGB", (cols * width + 16, lines * height + 16), BG)
    draw = ImageDraw.Draw(img)
    y = 8
    for g in grids:
        for row in g:
            for x, (ch, fg, bg, bold) in enumerate(row):
                left = 8 + x * width
                if bg != BG:
                    draw.rectangle([left, y, left + width, y + height], fill=bg)
                draw.text((left, y + 1), ch, font=bold_font if bold else font, fill=fg)
            y += height
        y += height
    img.save(out)


def main() -> None:
    """`ansi_png.py CAPTURE... OUT.png`."""
    *inputs, out = sys.argv[1:]
    render([Path(p).read_text(encoding="utf-8") for p in inputs], Path(out))


if __name__ == "__main__":
    main()
