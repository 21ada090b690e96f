#!/usr/bin/env python3
"""Writes an NDJSON stream with redeliveries, for measuring and checking duplicate detection:
every input line, and for a quarter of them (chosen with a fixed seed) one, two or five
copies sent again 1 to 30,000 lines later, as an at-least-once pipeline would.

    scripts/redeliver.py FILE [--seed S] > redelivered.ndjson
"""
import heapq
import random
import sys

args = sys.argv[1:]
seed, files = 7, []
while args:
    a = args.pop(0)
    if a == "--seed": seed = int(args.pop(0))
    else: files.append(a)
if len(files) != 1:
    sys.exit(__doc__)
rng = random.Random(seed)
pending = []  # (line number to send at, sequence, line)
sequence = 0
out = sys.stdout.buffer
with open(files[0], "rb") as source:
    for number, line in enumerate(source):
        while pending and pending[0][0] <= number:
            out.write(heapq.heappop(pending)[2])
        out.write(line)
        if rng.random() < 0.25:
            for _ in range(rng.choice([1, 1, 2, 5])):
                sequence += 1
                heapq.heappush(pending, (number + rng.randint(1, 30000), sequence, line))
for _, _, line in sorted(pending):
    out.write(line)
