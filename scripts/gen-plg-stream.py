#!/usr/bin/env python3
"""A generated product-led SaaS stream for config/examples/product-led.yaml (BENCHMARKS.md):
feature use, purchases, tickets, trials with their end dates as traits, email engagement.
Usage: gen-plg-stream.py EVENTS CONTACTS DAYS [SEED] > stream.ndjson (time-ordered, native shape)."""
import random, sys, datetime

events, contacts, days = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
span_ms = days * 86_400_000
times = sorted(rng.randrange(span_ms) for _ in range(events))
features = ["export", "dashboard", "api", "alerts", "sharing"]
out = sys.stdout
for i, t in enumerate(times):
    c = f"u{rng.randrange(contacts):06d}"
    ts = (start + datetime.timedelta(milliseconds=t)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z"
    r = rng.random()
    if r < 0.55:
        props = '{"feature":"%s","minutes":%s}' % (rng.choice(features), rng.choice(["1", "5", "12", "30", "45.5", "90"]))
        kind = "feature_used"
    elif r < 0.60:
        props = '{"amount":%s,"plan":"%s"}' % (rng.choice(["9", "29", "49.99", "99", "1200"]), rng.choice(["starter", "team", "enterprise"]))
        kind = "purchase"
    elif r < 0.64:
        props = '{"priority":"%s"}' % rng.choice(["low", "normal", "high", "urgent"])
        kind = "ticket_opened"
    elif r < 0.66:
        props, kind = "{}", "trial_started"
    elif r < 0.69:
        ends = start + datetime.timedelta(milliseconds=t) + datetime.timedelta(days=rng.randrange(-5, 30))
        props, kind = '{"trial_ends_at":"%s"}' % ends.strftime("%Y-%m-%d"), "traits"
    elif r < 0.90:
        props, kind = '{"machine_open":%s}' % ("true" if rng.random() < 0.2 else "false"), "email_open"
    elif r < 0.99:
        props, kind = '{"url":"https://x.io/p"}', "email_click"
    else:
        props, kind = "{}", "unsubscribed"
    out.write('{"contact_id":"%s","type":"%s","ts":"%s","event_id":"e%d","props":%s}\n' % (c, kind, ts, i, props))
