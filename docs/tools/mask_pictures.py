#!/usr/bin/env python3
# Draws the attention-mask pictures used in docs/ops/*.md into docs/ops/img/:
#   sliding_window.png, neighborhood_2d.png, block_sparse.png, topk.png
# Grids are row = query, column = key (1-D masks) or the image itself (2-D
# neighborhood); white = not seen, dark blue = seen, orange = the query itself.
# Standard library only (PNG written with zlib + struct); output is deterministic.
# Regenerate from the repo root with:  python3 docs/tools/mask_pictures.py
import os
import struct
import zlib

CELL = 8          # pixels per cell (inside the grid lines)
LINE = 1          # grid line width
GAP = 16          # white gap between side-by-side panels
MARGIN = 6        # white border around the whole picture

WHITE = (255, 255, 255)
BLUE = (31, 63, 135)
ORANGE = (240, 135, 30)
GRID = (214, 214, 214)
BLOCK = (110, 110, 110)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ops", "img")


def write_png(path, pixels):
    """pixels: list of rows, each a list of (r, g, b) tuples."""
    h, w = len(pixels), len(pixels[0])
    raw = bytearray()
    for row in pixels:
        raw.append(0)  # filter type: none
        for r, g, b in row:
            raw += bytes((r, g, b))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def panel_size(n):
    return n * (CELL + LINE) + LINE


def draw_panel(canvas, x0, y0, colors, block=0):
    """colors[r][c] -> RGB of each cell; grid lines every cell, darker every `block` cells."""
    rows, cols = len(colors), len(colors[0])
    H, W = panel_size(rows), panel_size(cols)
    for y in range(H):
        for x in range(W):
            ly = y % (CELL + LINE) < LINE
            lx = x % (CELL + LINE) < LINE
            if ly or lx:
                dark = False
                if block:
                    if ly and (y // (CELL + LINE)) % block == 0:
                        dark = True
                    if lx and (x // (CELL + LINE)) % block == 0:
                        dark = True
                    if y == H - 1 or x == W - 1:  # outer bottom/right edge
                        dark = True
                canvas[y0 + y][x0 + x] = BLOCK if dark else GRID
            else:
                canvas[y0 + y][x0 + x] = colors[y // (CELL + LINE)][x // (CELL + LINE)]


def render(path, panels, block=0):
    """panels: list of colour grids, drawn side by side with a gap."""
    h = max(panel_size(len(p)) for p in panels)
    w = sum(panel_size(len(p[0])) for p in panels) + GAP * (len(panels) - 1)
    canvas = [[WHITE] * (w + 2 * MARGIN) for _ in range(h + 2 * MARGIN)]
    x = MARGIN
    for p in panels:
        draw_panel(canvas, x, MARGIN, p, block)
        x += panel_size(len(p[0])) + GAP
    write_png(path, canvas)


def mask_colors(seen, self_orange=True):
    """1-D mask (row = query i, column = key j) -> colours; the diagonal key
    j == i (the query's own position) is orange when it is seen."""
    out = []
    for i, row in enumerate(seen):
        out.append([(ORANGE if (self_orange and i == j) else BLUE) if s else WHITE
                    for j, s in enumerate(row)])
    return out


# ---------------------------------------------------------------- pictures

def sliding_window(n=24, window_left=8):
    plain = [[i - window_left <= j <= i for j in range(n)] for i in range(n)]
    dil2 = [[i - window_left <= j <= i and (i - j) % 2 == 0 for j in range(n)]
            for i in range(n)]
    return [mask_colors(plain), mask_colors(dil2)]


def natten_axis(i, n, kernel, dilation):
    """Key positions along one axis for query position i (window shifted at
    the edges, never shrunk)."""
    r = i % dilation
    m = len(range(r, n, dilation))       # length of the residue grid
    c = i // dilation                    # query's index on that grid
    start = min(max(c - kernel // 2, 0), m - kernel)
    return [r + dilation * g for g in range(start, start + kernel)]


def neighborhood(n=12, kernel=5):
    panels = []
    for (qi, qj), dil in (((5, 6), 1), ((0, 1), 1), ((5, 6), 2)):
        rows = natten_axis(qi, n, kernel, dil)
        cols = natten_axis(qj, n, kernel, dil)
        keys = {(a, b) for a in rows for b in cols}
        assert len(keys) == kernel * kernel
        grid = [[WHITE] * n for _ in range(n)]
        for a, b in keys:
            grid[a][b] = BLUE
        grid[qi][qj] = ORANGE
        panels.append(grid)
    return panels


def block_sparse(n=32, bs=4):
    nb = n // bs
    selected = []
    for qb in range(nb):
        sel = [qb, 0]                    # local block + keep_first
        if qb >= 2:
            b = (qb * 3) % qb            # fixed example rule (always 0 -> skipped)
            if b not in sel and b < qb:
                sel.append(b)
        if qb >= 5 and qb - 3 not in sel:
            sel.append(qb - 3)
        selected.append(set(sel))
    seen = [[(j // bs) in selected[i // bs] and j <= i for j in range(n)]
            for i in range(n)]
    return [mask_colors(seen)], selected


def topk(n=24, k=4):
    def score(i, j):
        return (i * 7 + j * 13) % 11

    seen = []
    for i in range(n):
        # highest score first, ties -> lower key index
        order = sorted(range(i + 1), key=lambda j: (-score(i, j), j))
        chosen = set(order[:k])
        assert len(chosen) == min(k, i + 1)
        seen.append([j in chosen for j in range(n)])
    return [mask_colors(seen)]


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    render(os.path.join(OUT_DIR, "sliding_window.png"), sliding_window())
    render(os.path.join(OUT_DIR, "neighborhood_2d.png"), neighborhood())
    panels, _ = block_sparse()
    render(os.path.join(OUT_DIR, "block_sparse.png"), panels, block=4)
    render(os.path.join(OUT_DIR, "topk.png"), topk())
    for name in ("sliding_window.png", "neighborhood_2d.png", "block_sparse.png", "topk.png"):
        p = os.path.join(OUT_DIR, name)
        print("%s  %d bytes" % (os.path.relpath(p), os.path.getsize(p)))


if __name__ == "__main__":
    main()
