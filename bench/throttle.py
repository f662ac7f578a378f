#!/usr/bin/env python3
"""throttle.py - what badguy throttling costs a login, and what an attack
costs good users (issue 13, docs/throttling.md).

One ringstore and one ringgate (1 worker, trusted plaintext IMAP
listener, its own passwd-file with SCRAM-SHA-256 keys, a private
redis-server on loopback), started per case:
  - latency: sequential logins (connect, greeting, LOGIN, tagged OK,
    LOGOUT, close) from one client, p50 and p99, with no throttle group,
    with the throttle on local counters only, and with Redis
  - under attack: good users' login rate and p99 (4 client threads, each
    from its own 127.0.0.x) alone, then while 10 attacker addresses
    (127.0.1.x, one connection each, again and again) send wrong
    passwords; the ratio is the rate kept.
The client is Python on the same box: absolute rates are the client's as
much as the server's; compare the rows with each other.

Usage: bench/throttle.py [BUILD_DIR] (default build/). Env:
RG_THR_LOGINS (sequential logins per case, default 400), RG_THR_SECONDS
(attack phases, default 10). Needs redis-server. Loopback only; every
process it starts is stopped on exit.
"""

import os
import shutil
import socket
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(ROOT, "build"))
os.environ.setdefault("RG_BUILD_DIR", BUILD)
os.environ.setdefault("RG_SOURCE_DIR", ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness as h  # noqa: E402
import rs_harness as rs  # noqa: E402
from test_gate_front import (MASTER, MASTER_PW, PASSWORD, USER,  # noqa: E402
                             fresh_port, gate_cfg, start_proc, store_cfg)
from test_gate_route_redis import Redis  # noqa: E402

LOGINS = int(os.environ.get("RG_THR_LOGINS", "400"))
SECONDS = float(os.environ.get("RG_THR_SECONDS", "10"))


def login(port, src, password):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), 20,
                                 source_address=(src, 0))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), password.encode()))
    line = f.readline()
    while line and not line.startswith(b"a "):
        line = f.readline()
    if line.startswith(b"a OK"):
        s.sendall(b"b LOGOUT\r\n")
    s.close()
    return line.startswith(b"a OK"), time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000


def start(base, name, store, throttle):
    d = os.path.join(base, name)
    os.mkdir(d)
    cfg = gate_cfg(d, [], store.cfg)
    del cfg["tls"]
    cfg["daemon"]["workers"] = 1
    cfg["daemon"]["log_level"] = "warn"
    cfg["limits"]["login_fail_delay"] = "0"
    cfg["limits"]["login_fails"] = 100
    cfg["imap"] = [{"name": "imap", "listen": "127.0.0.1:%d" % fresh_port(),
                    "trusted": True, "trusted_nets": ["127.0.0.0/8"]}]
    cfg["pop3"] = []
    cfg["submission"] = []
    if throttle is not None:
        cfg["throttle"] = throttle
    return start_proc(h.Ringgate(d, cfg))


def latency(gate):
    port = int(gate.cfg["imap"][0]["listen"].rsplit(":", 1)[1])
    for _ in range(20):
        login(port, "127.0.0.2", PASSWORD)
    res = [login(port, "127.0.0.2", PASSWORD) for _ in range(LOGINS)]
    if not all(ok for ok, _ in res):
        raise SystemExit("a good login failed")
    times = [t for _, t in res]
    return pct(times, 50), pct(times, 99)


def good_rate(gate, attack):
    port = int(gate.cfg["imap"][0]["listen"].rsplit(":", 1)[1])
    stop = threading.Event()
    times, fails, bad_tries = [], [0], [0]
    lock = threading.Lock()

    def good(i):
        while not stop.is_set():
            ok, t = login(port, "127.0.0.%d" % (10 + i), PASSWORD)
            with lock:
                times.append(t)
                fails[0] += not ok

    def attacker(i):
        while not stop.is_set():
            try:
                login(port, "127.0.1.%d" % (1 + i), "wrong-%d" % i)
                with lock:
                    bad_tries[0] += 1
            except OSError:
                pass
    threads = [threading.Thread(target=good, args=(i,)) for i in range(4)]
    if attack:
        threads += [threading.Thread(target=attacker, args=(i,))
                    for i in range(10)]
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(SECONDS)
    stop.set()
    n = len(times)
    for t in threads:
        t.join(30)
    return n / SECONDS, pct(times, 99), fails[0], bad_tries[0]


def main():
    base = tempfile.mkdtemp(prefix="rg-thr-bench-")
    procs = []
    try:
        redis = Redis(base)
        redis.start()
        procs.append(redis)
        sd = os.path.join(base, "store")
        os.mkdir(sd)
        rs.write_passwd(os.path.join(sd, "passwd"),
                        {USER: PASSWORD, MASTER: MASTER_PW})
        cert, key = h.make_cert(base, "ec", stem="server")
        store = rs.Ringstore(sd, store_cfg(sd, [(cert, key)]))
        store.start()
        procs.append(store)
        # connection limits off (the good users log in hundreds of times
        # a second from one address each): every decision is still made
        # and counted, the tarpit and blocks apply
        open_t = {"imap": {"rate_ip": 0, "rate_net": 0, "conns_ip": 0,
                           "conns_net": 0}}
        redis_t = dict(open_t, redis="127.0.0.1:%d" % redis.port,
                       timeout="100ms")
        cases = [("no throttle", None), ("throttle, local only", open_t),
                 ("throttle, Redis on loopback", redis_t)]
        print("# cpus=%d logins=%d seconds=%g" % (os.cpu_count(), LOGINS,
                                                  SECONDS))
        print("| case | login p50 | login p99 |")
        print("|---|---|---|")
        for i, (name, t) in enumerate(cases):
            g = start(base, "lat%d" % i, store, t)
            procs.append(g)
            p50, p99 = latency(g)
            print("| %s | %.2f ms | %.2f ms |" % (name, p50, p99))
            g.stop()
        print()
        print("| good users (4 threads), throttle with Redis | logins/s |"
              " p99 | failed | attacker tries |")
        print("|---|---|---|---|---|")
        g = start(base, "attack", store, redis_t)
        procs.append(g)
        base_rate, base_p99, f0, _ = good_rate(g, False)
        print("| no attack | %.0f | %.1f ms | %d | - |" %
              (base_rate, base_p99, f0))
        rate, p99, f1, tries = good_rate(g, True)
        print("| 10 attacker addresses, wrong passwords | %.0f | %.1f ms |"
              " %d | %d |" % (rate, p99, f1, tries))
        print("kept: %.2f of the unattacked rate" % (rate / base_rate))
        print("throttle decisions: %s" % {
            k: g.metric("ringgate_throttle_decisions_total", rule=r,
                        result=v)
            for k, (r, v) in {"delayed": ("tarpit", "delayed"),
                              "blocked": ("block", "refused"),
                              "passed": ("login", "passed")}.items()})
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(base, True)


if __name__ == "__main__":
    main()
