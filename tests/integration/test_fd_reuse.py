"""test_fd_reuse.py - what belongs to one session never reaches another.

A connection's descriptor number is reused by the kernel the moment it is
closed, by any thread of the process. If a daemon closes a socket while a
send or receive that names its number is still waiting to be submitted to
the ring, and another worker accepts a client in between, the op runs on
the new client's socket: one session's bytes go out on another session's
connection (issue 8: a stale copy of an upstream greeting arrived before a
client's own ServerHello, about 1 in 1,600 sessions under churn).

The test loads the daemons the way `openssl s_time -new` does, from
several processes at once:
- churn clients open a connection, finish the TLS handshake (or not, on a
  plaintext port) and close at once, some with a reset; any TLS or
  protocol error they see is counted: a foreign record before the
  ServerHello shows up as "unexpected message";
- marker clients stay a little and check that every byte they read is
  theirs: through ringgate's relay the upstream (an echo that greets every
  connection with its own number) must see only lines that carry its own
  connection's number, and the client must read back exactly its own
  lines; on ringstore's listeners (plaintext and implicit TLS) a client
  must read exactly one greeting and then exactly the tagged answers to
  its own, unique tags.
Both daemons run two workers, so the descriptor table is shared by two
rings. RG_FDREUSE_SECONDS sets each phase's length (default 15 s; the
issue's 10-minute run sets 600).
"""

import multiprocessing
import os
import re
import selectors
import socket
import ssl
import struct
import time
import unittest

import harness as h
import rs_harness as rs

SECONDS = float(os.environ.get("RG_FDREUSE_SECONDS", "15"))
CHURN_PROCS = 3
MARKER_PROCS = 2
MARKER_LINES = 8
SAMPLES = 5  # error texts each client process reports


# ------------------------------------------------------------- the upstream

class GreetEcho:
    """Single-threaded upstream for the relay: greets connection k with
    "* OK up conn=k" and echoes each line, which must read
    "MARK k <nonce> <i>" with its own k. Anything else is a violation."""

    LINE = re.compile(rb"MARK (\d+) [0-9a-f]+ \d+\r\n")

    def __init__(self, listener, stop, results):
        self.sel = selectors.DefaultSelector()
        self.listener = listener
        self.stop = stop
        self.results = results
        self.next_id = 0
        self.conns = 0
        self.lines = 0
        self.violations = []

    def run(self):
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.2):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.fileobj, key.data)
        self.results.put({"conns": self.conns, "lines": self.lines,
                          "violations": self.violations[:SAMPLES],
                          "nviolations": len(self.violations)})

    def _accept(self):
        for _ in range(64):
            try:
                c, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            self.next_id += 1
            self.conns += 1
            c.setblocking(True)
            try:
                c.sendall(b"* OK up conn=%d\r\n" % self.next_id)
            except OSError:
                c.close()
                continue
            c.setblocking(False)
            self.sel.register(c, selectors.EVENT_READ,
                              {"id": self.next_id, "buf": b""})

    def _read(self, c, st):
        try:
            data = c.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(c)
            c.close()
            return
        st["buf"] += data
        while b"\n" in st["buf"]:
            line, st["buf"] = st["buf"].split(b"\n", 1)
            line += b"\n"
            m = self.LINE.fullmatch(line)
            if m is None or int(m.group(1)) != st["id"]:
                self.violations.append("conn %d got %r" % (st["id"],
                                                           line[:80]))
                continue
            self.lines += 1
            try:
                c.setblocking(True)
                c.sendall(line)
                c.setblocking(False)
            except OSError:
                pass


def upstream_main(listener, stop, results):
    GreetEcho(listener, stop, results).run()


# ------------------------------------------------------------ the clients

def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def open_conn(port, ctx, timeout=20.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ctx is None:
        return raw
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def reset_close(s):
    """Close with a RST instead of a FIN (SO_LINGER 0)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_line(s, buf):
    """(line, rest): one CRLF line from s after what buf already holds."""
    while b"\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise EOFError("eof after %r" % buf[-80:])
        buf += data
    line, rest = buf.split(b"\n", 1)
    return line + b"\n", rest


class Tally:
    def __init__(self, kind):
        self.kind = kind
        self.sessions = 0
        self.foreign = 0
        self.errors = 0
        self.samples = []

    def fail(self, what, foreign):
        if foreign:
            self.foreign += 1
        else:
            self.errors += 1
        if len(self.samples) < SAMPLES:
            self.samples.append("%s: %s" % (self.kind, what))

    def result(self):
        return {"kind": self.kind, "sessions": self.sessions,
                "foreign": self.foreign, "errors": self.errors,
                "samples": self.samples}


def churn_main(port, cafile, seconds, results):
    """Open, handshake, close at once; every third close is a reset."""
    ctx = tls_context(cafile) if cafile else None
    t = Tally("churn:%d" % port)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        try:
            s = open_conn(port, ctx)
        except ssl.SSLError as e:
            # a record before our ServerHello: someone else's bytes
            t.fail("handshake: %s" % e, True)
            continue
        except OSError as e:
            t.fail("connect: %r" % e, False)
            continue
        t.sessions += 1
        if i % 3 == 0:
            reset_close(s)
        else:
            s.close()
    results.put(t.result())


def relay_marker_main(port, cafile, seconds, results):
    """Through the relay: read our greeting, send lines naming our
    upstream connection, read exactly those lines back."""
    ctx = tls_context(cafile)
    t = Tally("relay-marker")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s = open_conn(port, ctx)
        except ssl.SSLError as e:
            t.fail("handshake: %s" % e, True)
            continue
        except OSError as e:
            t.fail("connect: %r" % e, False)
            continue
        try:
            relay_marker_session(s, t)
        except ssl.SSLError as e:
            t.fail("tls: %s" % e, True)
        except (OSError, EOFError) as e:
            t.fail("io: %r" % e, False)
        finally:
            s.close()
    results.put(t.result())


def relay_marker_session(s, t):
    greeting, rest = read_line(s, b"")
    m = re.fullmatch(rb"\* OK up conn=(\d+)\r\n", greeting)
    if m is None or rest:
        t.fail("greeting %r + %r" % (greeting[:80], rest[:80]), True)
        return
    conn = int(m.group(1))
    nonce = os.urandom(8).hex().encode()
    want = b"".join(b"MARK %d %s %d\r\n" % (conn, nonce, i)
                    for i in range(MARKER_LINES))
    s.sendall(want)
    got = b""
    while len(got) < len(want):
        data = s.recv(65536)
        if not data:
            break
        got += data
    if got != want:
        t.fail("echo %r, wanted %r" % (got[:80], want[:80]), True)
        return
    t.sessions += 1


def store_marker_main(port, cafile, seconds, results):
    """On ringstore: one greeting, then our unique tags answered in
    order and nothing else."""
    ctx = tls_context(cafile) if cafile else None
    t = Tally("store-marker:%d" % port)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s = open_conn(port, ctx)
        except ssl.SSLError as e:
            t.fail("handshake: %s" % e, True)
            continue
        except OSError as e:
            t.fail("connect: %r" % e, False)
            continue
        try:
            store_marker_session(s, t)
        except ssl.SSLError as e:
            t.fail("tls: %s" % e, True)
        except (OSError, EOFError) as e:
            t.fail("io: %r" % e, False)
        finally:
            s.close()
    results.put(t.result())


def store_marker_session(s, t):
    greeting, buf = read_line(s, b"")
    if not greeting.startswith(b"* OK "):
        t.fail("greeting %r" % greeting[:80], True)
        return
    nonce = os.urandom(6).hex()
    tags = ["m%sx%d" % (nonce, i) for i in range(MARKER_LINES)]
    s.sendall(b"".join(b"%s NOOP\r\n" % tag.encode() for tag in tags))
    for tag in tags:
        line, buf = read_line(s, buf)
        if not line.startswith(tag.encode() + b" OK"):
            t.fail("wanted %s, read %r" % (tag, line[:80]), True)
            return
    s.sendall(b"z%s LOGOUT\r\n" % nonce.encode())
    line, buf = read_line(s, buf)
    if not line.startswith(b"* BYE"):
        t.fail("wanted BYE, read %r" % line[:80], True)
        return
    line, buf = read_line(s, buf)
    if not line.startswith(b"z%s OK" % nonce.encode()) or buf:
        t.fail("wanted LOGOUT OK, read %r + %r" % (line[:80], buf[:80]),
               True)
        return
    t.sessions += 1


# ---------------------------------------------------------------- harness

def run_clients(specs, seconds):
    """Start one process per (function, args) spec, each for `seconds`;
    return their tallies."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=fn, args=args + (seconds, q), daemon=True)
             for fn, args in specs]
    for p in procs:
        p.start()
    out = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    return out


def summarize(testcase, tallies, min_sessions):
    lines = ["%-28s sessions=%-6d foreign=%d errors=%d" %
             (t["kind"], t["sessions"], t["foreign"], t["errors"])
             for t in tallies]
    print("\n" + "\n".join(lines))
    samples = [s for t in tallies for s in t["samples"]]
    foreign = sum(t["foreign"] for t in tallies)
    errors = sum(t["errors"] for t in tallies)
    total = sum(t["sessions"] for t in tallies)
    testcase.assertEqual(foreign, 0, "foreign bytes:\n" + "\n".join(samples))
    testcase.assertEqual(errors, 0, "client errors:\n" + "\n".join(samples))
    # a run too small to see a 1-in-2,000 event proves nothing
    testcase.assertGreaterEqual(total, min_sessions,
                                "too few sessions to mean anything")
    return total


def min_sessions():
    # scaled with the phase length, low enough for a loaded 2-core box
    # (the run is only meaningful with thousands, and gets them); the
    # ASan build is some 3x slower
    per_second = 40 if h.is_asan_build() else 100
    return int(SECONDS * per_second)


class TestRelayFdReuse(unittest.TestCase):

    def test_churn_and_markers_through_relay(self):
        d = h.temp_dir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        mp = multiprocessing.get_context("fork")
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4096)
        stop, res = mp.Event(), mp.Queue()
        up = mp.Process(target=upstream_main, args=(lsock, stop, res),
                        daemon=True)
        up.start()
        up_port = lsock.getsockname()[1]
        lsock.close()
        self.addCleanup(up.kill)
        relays = [{"name": "imaps",
                   "listen": "127.0.0.1:%d" % h.free_port(), "tls": True,
                   "upstream": "127.0.0.1:%d" % up_port}]
        cfg = h.base_config([(cert, key)], relays, h.free_port(),
                            workers=2, daemon={"log_level": "warn"})
        gate = h.Ringgate(d, cfg).start(self)
        port = gate.port("imaps")
        specs = [(churn_main, (port, cert))] * CHURN_PROCS + \
                [(relay_marker_main, (port, cert))] * MARKER_PROCS
        tallies = run_clients(specs, SECONDS)
        stop.set()
        upres = res.get(timeout=30)
        print("upstream: conns=%d lines=%d violations=%d" %
              (upres["conns"], upres["lines"], upres["nviolations"]))
        self.assertEqual(upres["nviolations"], 0,
                         "upstream saw other connections' lines:\n" +
                         "\n".join(upres["violations"]))
        summarize(self, tallies, min_sessions())
        gate.assert_alive()


class TestStoreFdReuse(unittest.TestCase):

    def test_churn_and_markers_on_ringstore(self):
        d = h.temp_dir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        rs.write_passwd(os.path.join(d, "passwd"),
                        {"demo@example.test": "ringgate-demo-pw"})
        plain, tls = h.free_port(), h.free_port()
        cfg = rs.store_config(d, plain, h.free_port(), certs=[(cert, key)],
                              daemon={"log_level": "warn"})
        cfg["imap"] = [
            {"name": "imap", "listen": "127.0.0.1:%d" % plain,
             "starttls": False, "trusted": True},
            {"name": "imaps", "listen": "127.0.0.1:%d" % tls,
             "tls": True},
        ]
        store = rs.Ringstore(d, cfg).start(self)
        specs = [(churn_main, (tls, cert)), (churn_main, (plain, None)),
                 (churn_main, (tls, cert)),
                 (store_marker_main, (tls, cert)),
                 (store_marker_main, (plain, None))]
        tallies = run_clients(specs, SECONDS)
        summarize(self, tallies, min_sessions())
        store.assert_alive()


if __name__ == "__main__":
    unittest.main()
