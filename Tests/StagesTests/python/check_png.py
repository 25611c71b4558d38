"""Decodes a PNG with the standard library only and reports its size and colors.

Usage: check_png.py FILE.png
Prints one JSON object: {"width": w, "height": h, "colors": distinct RGB colors,
"non_white": fraction of pixels that are not white}. 8-bit RGB, RGBA, gray and
gray+alpha, non-interlaced (what Chromium writes).
"""
import json
import struct
import sys
import zlib

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG")
pos, idat, header = 8, [], None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    elif kind == b"IEND":
        break
    pos += 12 + length
width, height, depth, color, _, _, interlace = header
if depth != 8 or interlace != 0 or color not in (0, 2, 4, 6):
    sys.exit(f"unsupported PNG: depth {depth} color {color} interlace {interlace}")
bpp = {0: 1, 2: 3, 4: 2, 6: 4}[color]
raw = zlib.decompress(b"".join(idat))
stride = width * bpp
prev = bytearray(stride)
colors, non_white = set(), 0
for y in range(height):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = bytes(line[x:x + 3]) if bpp >= 3 else bytes([line[x]] * 3)
        colors.add(px)
        if px != b"\xff\xff\xff":
            non_white += 1
    prev = line
print(json.dumps({"width": width, "height": height, "colors": len(colors),
                  "non_white": non_white / float(width * height)}))
