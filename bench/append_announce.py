#!/usr/bin/env python3
"""append_announce.py - what issue 9's consistency rules cost ringstore.

Usage: bench/append_announce.py [BUILD_DIR] (default build/). Loopback,
free ports, a temporary mail root; everything started is stopped.

Measures, with the server's own CPU time (utime + stime from /proc) and
the client's wall time, N small APPENDs (RG_APPENDS, default 1000):
  other     - into Trash while INBOX is selected (nothing to announce)
  selected  - into the selected INBOX (each one synced on the pool and
              announced with EXISTS/RECENT before the OK, \\Recent
              claimed in the UID list)
  old-dated - dated 2020 into INBOX while a second session SELECTs INBOX
              in a loop (the tmp/ cleanup runs on every SELECT); prints
              how many failed (0 since the cleanup judges by ctime)
Prints key=value lines.
"""

import imaplib
import os
import shutil
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if len(sys.argv) > 1:
    os.environ["RG_BUILD_DIR"] = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness as h  # noqa: E402
import rs_harness as rs  # noqa: E402

N = int(os.environ.get("RG_APPENDS", "1000"))
MSG = b"From: a@example.test\r\nSubject: bench\r\n\r\nbody\r\n"
OLD = '"15-Mar-2020 10:00:00 +0000"'


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(store):
    m = imaplib.IMAP4("127.0.0.1", store.port(), timeout=60)
    m.login(rs.DEMO_USER, rs.DEMO_PASSWORD)
    return m


def run(store, name, folder, date=None, selector=False):
    m = login(store)
    m.select("INBOX")
    stop = threading.Event()
    selects = [0]

    def loop():
        s = login(store)
        while not stop.is_set():
            s.select("INBOX")
            selects[0] += 1
        s.logout()

    t = threading.Thread(target=loop) if selector else None
    if t:
        t.start()
    cpu0, t0, failed = cpu_seconds(store.proc.pid), time.monotonic(), 0
    for _ in range(N):
        failed += m.append(folder, None, date, MSG)[0] != "OK"
    wall, cpu = time.monotonic() - t0, cpu_seconds(store.proc.pid) - cpu0
    stop.set()
    if t:
        t.join(60)
    m.logout()
    print("case=%s appends=%d failed=%d wall_ms_per_append=%.3f "
          "server_cpu_us_per_append=%.1f%s" % (
              name, N, failed, wall * 1000 / N, cpu * 1e6 / N,
              " concurrent_selects=%d" % selects[0] if selector else ""))


def main():
    d = tempfile.mkdtemp(prefix="rg-bench-append-")
    try:
        rs.write_passwd(os.path.join(d, "passwd"),
                        {rs.DEMO_USER: rs.DEMO_PASSWORD})
        cfg = rs.store_config(d, h.free_port(), h.free_port(), workers=1)
        store = rs.Ringstore(d, cfg).start()
        try:
            run(store, "other", "Trash")
            run(store, "selected", "INBOX")
            run(store, "old-dated", "INBOX", OLD, selector=True)
        finally:
            store.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
