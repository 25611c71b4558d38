"""A hand-made Parquet writer for what pyarrow and DuckDB do not write:
a REQUIRED BYTE_ARRAY column annotated DECIMAL (Hive's and older Spark's
way of storing wide decimals). Thrift compact encoding of just the fields
needed; PLAIN values, no compression, one v1 data page, one row group.
pyarrow reads the result (the tests take its reading as the reference).
"""
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def zigzag(n):
    return varint((n << 1) ^ (n >> 63))

class Struct:
    """Thrift compact struct: fields as (id, type, value) in ascending id."""
    def __init__(self, *fields):
        self.fields = fields
    def encode(self):
        out = bytearray()
        last = 0
        for fid, t, v in self.fields:
            code = {"i32": 5, "i64": 6, "binary": 8, "list": 9, "struct": 12}[t]
            delta = fid - last
            assert 0 < delta < 16
            out.append((delta << 4) | code)
            last = fid
            out += encode_value(t, v)
        out.append(0)
        return bytes(out)

def encode_value(t, v):
    if t in ("i32", "i64"):
        return zigzag(v)
    if t == "binary":
        b = v.encode() if isinstance(v, str) else v
        return varint(len(b)) + b
    if t == "struct":
        return v.encode()
    if t == "list":
        et, items = v
        code = {"i32": 5, "i64": 6, "binary": 8, "struct": 12}[et]
        assert len(items) < 15
        return bytes([(len(items) << 4) | code]) + b"".join(encode_value(et, x) for x in items)

def be_bytes(n, pad=0):
    """n as big-endian two's complement: the fewest bytes, plus `pad` sign-extension bytes."""
    length = max(1, (n.bit_length() + 8) // 8) + pad
    return n.to_bytes(length, "big", signed=True)

def write_byte_array_decimal(path, values, precision, scale, name="bd"):
    """One REQUIRED BYTE_ARRAY column annotated DECIMAL(precision, scale), PLAIN, uncompressed, v1 page."""
    data = b"".join(struct.pack("<I", len(b)) + b for b in values)
    header = Struct((1, "i32", 0), (2, "i32", len(data)), (3, "i32", len(data)),
                    (5, "struct", Struct((1, "i32", len(values)), (2, "i32", 0), (3, "i32", 3), (4, "i32", 3)))).encode()
    page = header + data
    offset = 4
    meta = Struct((1, "i32", 6), (2, "list", ("i32", [0])), (3, "list", ("binary", [name])), (4, "i32", 0),
                  (5, "i64", len(values)), (6, "i64", len(page)), (7, "i64", len(page)), (9, "i64", offset))
    footer = Struct(
        (1, "i32", 1),
        (2, "list", ("struct", [Struct((4, "binary", "schema"), (5, "i32", 1)),
                                Struct((1, "i32", 6), (3, "i32", 0), (4, "binary", name), (6, "i32", 5), (7, "i32", scale), (8, "i32", precision))])),
        (3, "i64", len(values)),
        (4, "list", ("struct", [Struct((1, "list", ("struct", [Struct((2, "i64", offset), (3, "struct", meta))])),
                                       (2, "i64", len(page)), (3, "i64", len(values)))])),
    ).encode()
    with open(path, "wb") as f:
        f.write(b"PAR1" + page + footer + struct.pack("<I", len(footer)) + b"PAR1")
