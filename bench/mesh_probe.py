#!/usr/bin/python3
"""Measures gossip in a running mesh of pacsmesh nodes (used by bench_mesh.sh).

Each node runs with log_level = debug, so it logs one line, with a millisecond UTC
timestamp, when it stores events it did not hold ("gossip: N new events from X").
That is the moment the event is committed on that node, read without polling the
nodes' CLIs (32 CLIs polled in parallel would measure themselves).

  mesh_probe.py spread PACSMESH ROUNDS DIR1:LOG1 DIR2:LOG2 ...
      ROUNDS times: a random node appends one event (`revoke` of a random id that is
      no member: a real signed event that changes no membership), then waits until
      every other node logged its arrival. Prints the median, p90, p99 and max time
      from the CLI call to the last node holding the event.
  mesh_probe.py catchup LOG EXPECTED_EVENTS SINCE_MS
      Waits until the node of LOG has logged EXPECTED_EVENTS new events after
      SINCE_MS and prints how long that took from its "running" line and the rate.
"""
import datetime
import os
import random
import re
import subprocess
import sys
import time

LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z debug gossip: (\d+) new events")
RUNNING = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z info  node: running")


def ms(stamp):
    t = datetime.datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%f")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


class Tail:
    """Reads a log file's new complete lines."""

    def __init__(self, path):
        self.path, self.f, self.rest = path, open(path, "rb"), b""
        self.f.seek(0, os.SEEK_END)

    def lines(self):
        data = self.rest + self.f.read()
        *complete, self.rest = data.split(b"\n")
        return complete


def percentile(values, p):
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def spread(pacsmesh, rounds, nodes):
    tails = [Tail(log) for _, log in nodes]
    results = []
    for r in range(rounds):
        time.sleep(random.uniform(0.05, 0.25))  # de-phase from the gossip timer
        for t in tails:
            t.lines()  # forget anything before this round
        origin = random.randrange(len(nodes))
        ghost = os.urandom(32).hex()
        t0 = int(time.time() * 1000)
        subprocess.run([pacsmesh, "revoke", ghost, "--reason", "bench", "--dir", nodes[origin][0]],
                       check=True, stdout=subprocess.DEVNULL)
        waiting = {i for i in range(len(nodes)) if i != origin}
        arrival = {}
        deadline = time.time() + 30
        while waiting and time.time() < deadline:
            for i in list(waiting):
                for line in tails[i].lines():
                    m = LINE.match(line)
                    if m and ms(m.group(1)) >= t0:
                        arrival[i] = ms(m.group(1))
                        waiting.discard(i)
                        break
            if waiting:
                time.sleep(0.002)
        if waiting:
            print(f"round {r}: {len(waiting)} node(s) never got the event within 30 s", file=sys.stderr)
            return 1
        results.append(max(arrival.values()) - t0)
    print(f"nodes {len(nodes)} rounds {rounds}: median {percentile(results, 50)} ms, "
          f"p90 {percentile(results, 90)} ms, p99 {percentile(results, 99)} ms, "
          f"max {max(results)} ms (CLI call to the last node holding the event)")
    return 0


def catchup(log, expected, since_ms):
    deadline = time.time() + 120
    got, start, last = 0, None, None
    with open(log, "rb") as f:
        rest = b""
        while time.time() < deadline:
            data = rest + f.read()
            *lines, rest = data.split(b"\n")
            for line in lines:
                m = RUNNING.match(line)
                if m and ms(m.group(1)) >= since_ms:
                    start = ms(m.group(1))
                m = LINE.match(line)
                if m and start is not None:
                    got += int(m.group(2))
                    last = ms(m.group(2 - 1))
            if start is not None and got >= expected:
                secs = max(last - start, 1) / 1000.0
                print(f"catch-up: {got} events in {last - start} ms from start "
                      f"= {got / secs:.0f} events/s")
                return 0
            time.sleep(0.01)
    print(f"catch-up: only {got} of {expected} events within 120 s", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "spread":
        nodes = [tuple(a.split(":", 1)) for a in argv[4:]]
        return spread(argv[2], int(argv[3]), nodes)
    if len(argv) == 5 and argv[1] == "catchup":
        return catchup(argv[2], int(argv[3]), int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
