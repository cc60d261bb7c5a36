#!/usr/bin/env python3
"""Independent reader of TensorBoard event files, for tensorboard's tests.

Standard library only: TFRecord framing with CRC-32C checks and a small
protobuf wire-format parser. Prints one JSON object per event; floats are
written with repr() as strings so that NaN and infinities survive, and
float32 scalars are widened to float64 exactly. On a framing or CRC error it
prints the error to stderr and exits with status 1.

Usage: read_events.py EVENT_FILE
"""
import json
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(buf):
    off = 0
    while off < len(buf):
        if len(buf) - off < 12:
            raise ValueError("truncated record header at %d" % off)
        header = buf[off:off + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", buf[off + 8:off + 12])
        if hcrc != masked(crc32c(header)):
            raise ValueError("length crc mismatch at %d" % off)
        if len(buf) - off - 16 < n:
            raise ValueError("truncated record at %d" % off)
        data = buf[off + 12:off + 12 + n]
        (dcrc,) = struct.unpack("<I", buf[off + 12 + n:off + 16 + n])
        if dcrc != masked(crc32c(data)):
            raise ValueError("data crc mismatch at %d" % off)
        yield data
        off += 16 + n


def varint(b, i):
    shift = v = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i


def fields(b):
    """Yields (field number, wire type, value) for each field of a message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v = b[i:i + 8]
            i += 8
        elif wire == 5:
            v = b[i:i + 4]
            i += 4
        elif wire == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wire)
        yield num, wire, v


def f64(b):
    return struct.unpack("<d", b)[0]


def packed_doubles(b):
    return [repr(x) for x in struct.unpack("<%dd" % (len(b) // 8), b)]


def value(b):
    out = {}
    for num, _, v in fields(b):
        if num == 1:
            out["tag"] = v.decode("utf-8")
        elif num == 2:
            out["kind"] = "scalar"
            out["scalar"] = repr(struct.unpack("<f", v)[0])
        elif num == 5:
            out["kind"] = "histo"
            h = {"bucket_limit": [], "bucket": []}
            names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
            for hn, _, hv in fields(v):
                if hn in names:
                    h[names[hn]] = repr(f64(hv))
                elif hn == 6:
                    h["bucket_limit"] += packed_doubles(hv)
                elif hn == 7:
                    h["bucket"] += packed_doubles(hv)
            out["histo"] = h
        elif num == 8:
            out["kind"] = "tensor"
            out["string_val"] = []
            out["dims"] = 0
            for tn, _, tv in fields(v):
                if tn == 1:
                    out["dtype"] = tv
                elif tn == 2:
                    out["dims"] = sum(1 for dn, _, _ in fields(tv) if dn == 2)
                elif tn == 8:
                    out["string_val"].append(tv.decode("utf-8"))
        elif num == 9:
            for mn, _, mv in fields(v):
                if mn == 1:
                    for pn, _, pv in fields(mv):
                        if pn == 1:
                            out["plugin_name"] = pv.decode("utf-8")
                elif mn == 4:
                    out["data_class"] = mv
    return out


def event(b):
    out = {"wall_time": "0.0", "step": 0, "values": []}
    for num, _, v in fields(b):
        if num == 1:
            out["wall_time"] = repr(f64(v))
        elif num == 2:
            out["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3:
            out["file_version"] = v.decode("utf-8")
        elif num == 5:
            out["values"] = [value(sv) for sn, _, sv in fields(v) if sn == 1]
    return out


def main():
    with open(sys.argv[1], "rb") as f:
        buf = f.read()
    try:
        for rec in records(buf):
            print(json.dumps(event(rec), ensure_ascii=False))
    except ValueError as e:
        print(e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
