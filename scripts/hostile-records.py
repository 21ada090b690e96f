#!/usr/bin/env python3
"""Writes a hostile NDJSON stream to stdout, for comparing `segmentd replay` outputs of two
builds (the decoder's fast path against the generic one): every input line, then variants of
it with escapes in every string, non-ASCII and non-UTF-8 bytes, every known field given each
JSON type, repeated keys, nested and deep values, odd numbers, whitespace everywhere, a BOM,
truncations.

    scripts/hostile-records.py FILE... [--per-file N] [--seed S] > hostile.ndjson
"""
import random
import re
import sys

args = sys.argv[1:]
per_file, seed, files = 400, 1, []
while args:
    a = args.pop(0)
    if a == "--per-file": per_file = int(args.pop(0))
    elif a == "--seed": seed = int(args.pop(0))
    else: files.append(a)
rng = random.Random(seed)
out = sys.stdout.buffer

KEYS = ["type", "contact_id", "ts", "event_id", "props", "userId", "timestamp", "messageId", "properties",
        "traits", "event", "machine_open", "url", "path", "kind", "form", "stage", "industry", "company_size",
        "country", "employees", "lifecycle_stage", "link_url", "form_id", "bounce_type"]
VALUES = [b"1", b"-0", b"1.5", b"1e3", b"-1E-2", b"123456789012345678901234567890", b"9223372036854775807",
          b"-9223372036854775808", b"true", b"false", b"null", b'""', b'"x"', b"{}", b"[]",
          b'{"a":{"b":[1,{"c":2}]}}', b"[1,[2,[3]]]", b'"2026-03-02T09:00:00+05:30"', b'"2026-03-02T09:00:00.5-00:00"',
          b"1772442000000.9", b"-62167219200001", b"253402300800000", b'"caf\\u00e9"', b'"caf\xc3\xa9"', b'"\\ud83d\\ude00"',
          b'"\\ud800"', b'"a\\"b"', b"[" * 70 + b"]" * 70]


def value_end(rec, start):
    depth, in_string, escaped, i = 0, False, False, start
    while i < len(rec):
        c = rec[i:i + 1]
        if in_string:
            if escaped: escaped = False
            elif c == b"\\": escaped = True
            elif c == b'"': in_string = False
        elif c == b'"': in_string = True
        elif c in (b"{", b"["): depth += 1
        elif c in (b"}", b"]"):
            if depth == 0: return i
            depth -= 1
        elif c == b"," and depth == 0: return i
        i += 1
    return i


def variants(rec):
    # Strings: one byte escaped, made non-ASCII or not UTF-8.
    for m in re.finditer(rb'"([^"\\]+)"', rec):
        s, e = m.start(1), m.end(1)
        rep = rng.choice([b"\\u00%02x" % rec[s], b"\\/", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3", b"\t", b"\\n", b"\\\\"])
        yield rec[:s] + rep + rec[s + 1:]
        yield rec[:e] + b'\\"' + rec[e:]
    # Known fields: each JSON type, repeated, repeated with another value.
    for key in KEYS:
        m = re.search(rb'"' + key.encode() + rb'"\s*:\s*', rec)
        if not m: continue
        vs, ve = m.end(), value_end(rec, m.end())
        for v in rng.sample(VALUES, 5):
            yield rec[:vs] + v + rec[ve:]
        member = rec[m.start():ve]
        yield rec[:-1] + b"," + member + b"}"
        yield rec[:-1] + b',"' + key.encode() + b'":' + rng.choice(VALUES) + b"}"
        yield rec[:m.start()] + b'"' + key.encode() + b'":' + rng.choice(VALUES) + b"," + rec[m.start():]
    # Nested props, whitespace, BOM, tails, truncation, random bytes.
    yield rec[:-1] + b',"props":{"nested":{"a":[1,{"b":null}],"c":"d"},"path":"/pricing"}}'
    yield re.sub(rb"([,:{}\[\]])", lambda m: m.group(1) + rng.choice([b" ", b"\t", b"\r", b"  "]), rec)
    yield b" \t" + rec + b" \r"
    yield b"\xef\xbb\xbf" + rec
    yield rec + b" x"
    yield rec + b","
    for cut in (1, len(rec) // 2, len(rec) - 1):
        if 0 < cut < len(rec): yield rec[:cut]
    for _ in range(3):
        b = bytearray(rec)
        b[rng.randrange(len(b))] = rng.randrange(256)
        yield bytes(b)


for path in files:
    with open(path, "rb") as f:
        lines = [l.rstrip(b"\n") for _, l in zip(range(per_file), f)]
    for rec in lines:
        if not rec.strip(): continue
        out.write(rec + b"\n")
        for v in variants(rec):
            out.write(v.replace(b"\n", b" ") + b"\n")
