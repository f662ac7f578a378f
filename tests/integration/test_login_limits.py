"""test_login_limits.py - what the login core (login/) enforces before a
user is known, tried against ringstore as an attacker would.

Covered: a delay before every failed login's answer (at least the
configured one; nothing else is read meanwhile), a limit of failed logins
per connection (then BYE), failed logins counting as bad commands, an
absolute pre-login deadline that a NOOP every few hundred milliseconds
does not move, an over-long AUTHENTICATE response ending the exchange with
a tagged BAD (the next line is a command again, never a SASL response), no
reading while a client that pipelines commands does not read the answers
(its sends stall, the server's memory stays put), and STARTTLS dropping
whatever was pipelined after it, before and inside TLS. Each limit is
counted in /metrics.
"""

import os
import select
import socket
import ssl
import time
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"


class StoreCase(unittest.TestCase):
    """A ringstore with a plaintext trusted listener and a STARTTLS one."""

    limits = {"login_fail_delay": "500ms", "login_fails": 3,
              "bad_commands": 5, "login_timeout": "60s"}

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        self.plain, self.tls = h.free_port(), h.free_port()
        cfg = rs.store_config(self.dir, self.plain, h.free_port(),
                              certs=[(self.cert, key)],
                              limits=self.limits,
                              # few receive buffers: the worker's shared
                              # ones are touched as they are used, and
                              # would look like what a session holds
                              daemon={"recv_buffers": 32})
        cfg["imap"] = [
            {"name": "plain", "listen": "127.0.0.1:%d" % self.plain,
             "starttls": False, "trusted": True},
            {"name": "starttls", "listen": "127.0.0.1:%d" % self.tls},
        ]
        if h.is_asan_build():
            # freed memory ASan keeps would look like held memory
            os.environ.setdefault("ASAN_OPTIONS", "")
            self.addCleanup(os.environ.__setitem__, "ASAN_OPTIONS",
                            os.environ["ASAN_OPTIONS"])
            os.environ["ASAN_OPTIONS"] += ":quarantine_size_mb=4"
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def connect(self, port=None):
        s = socket.create_connection(("127.0.0.1", port or self.plain),
                                     timeout=20)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        return s, f

    def closed(self, count, reason):
        self.store.wait_metric("ringstore_imap_login_closed_total", count,
                               reason=reason)


class Limits(StoreCase):

    def test_failed_login_waits(self):
        s, f = self.connect()
        start = time.monotonic()
        s.sendall(b"a LOGIN %s wrong\r\nb NOOP\r\n" % USER.encode())
        line = f.readline()
        took = time.monotonic() - start
        self.assertEqual(line, b"a NO [AUTHENTICATIONFAILED] "
                               b"Authentication failed\r\n")
        # a floor, not a speed: the answer is held back at least this long
        self.assertGreaterEqual(took, 0.45)
        # and what was pipelined behind it waited for it
        self.assertEqual(f.readline(), b"b OK NOOP completed\r\n")
        s.sendall(b"c LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.assertTrue(f.readline().startswith(b"c OK [CAPABILITY"))

    def test_three_failures_end_the_connection(self):
        s, f = self.connect()
        for i in range(3):
            s.sendall(b"t%d LOGIN %s wrong%d\r\n" % (i, USER.encode(), i))
            self.assertIn(b"AUTHENTICATIONFAILED", f.readline())
        self.assertEqual(f.readline(), b"* BYE Too many failed logins\r\n")
        self.assertEqual(f.readline(), b"")
        self.closed(1, "fails")
        self.assertGreaterEqual(self.store.metric(
            "ringstore_imap_logins_total", result="fail"), 3)
        # the right password on a new connection still works
        s, f = self.connect()
        s.sendall(b"a LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.assertTrue(f.readline().startswith(b"a OK"))

    def test_failures_count_as_bad_commands(self):
        s, f = self.connect()
        for i in range(3):  # three BADs
            s.sendall(b"x%d FROB\r\n" % i)
            self.assertIn(b"BAD", f.readline())
        for i in range(2):  # two failed logins: 5 bad things
            s.sendall(b"t%d LOGIN %s wrong\r\n" % (i, USER.encode()))
            self.assertIn(b"AUTHENTICATIONFAILED", f.readline())
        self.assertEqual(f.readline(), b"* BYE Too many bad commands\r\n")
        self.assertEqual(f.readline(), b"")
        self.closed(1, "bad")

    def test_long_sasl_response_ends_exchange(self):
        s, f = self.connect()
        s.sendall(b"a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(f.readline(), b"+ \r\n")
        s.sendall(b"A" * 20000 + b"\r\nb NOOP\r\n")
        self.assertEqual(f.readline(), b"a BAD Invalid SASL response\r\n")
        # the next line is a command again, not a SASL response
        self.assertEqual(f.readline(), b"b OK NOOP completed\r\n")

    def test_no_reading_while_output_is_full(self):
        # ten clients pipeline CAPABILITY and never read the answers
        conns = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", self.plain),
                                         timeout=20)
            self.addCleanup(s.close)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            conns.append(s)
        base = self.store.rss_kib()
        sent = [0] * len(conns)
        last = [time.monotonic()] * len(conns)
        chunk = b"a CAPABILITY\r\n" * 4096
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for i, s in enumerate(conns):
                try:
                    sent[i] += s.send(chunk)
                    last[i] = time.monotonic()
                except BlockingIOError:
                    pass
            if all(time.monotonic() - t > 2 for t in last):
                break
            time.sleep(0.02)
        grown = self.store.rss_kib() - base
        print("\n  10 clients pipelining CAPABILITY without reading: "
              "%d KiB taken from each at most, ringstore RSS +%d KiB"
              % (max(sent) >> 10, grown))
        stalled = [time.monotonic() - t > 2 for t in last]
        self.assertTrue(all(stalled), "the server kept reading")
        # per session: the output queue's buffers (out and pend, each up
        # to twice output_buffer as they grow) plus its input and parser,
        # whatever the client keeps sending (docs/backend.md)
        per_session = 4 * 256 + 1024
        bound = 10 * per_session + 4096
        if h.is_asan_build():
            bound *= 2  # redzones and shadow memory of what is held
        self.assertLess(grown, bound)

    def test_starttls_drops_pipelined_plaintext(self):
        raw = socket.create_connection(("127.0.0.1", self.tls), timeout=20)
        self.addCleanup(raw.close)
        f = raw.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        self.assertEqual(f.readline(), b"a OK Begin TLS negotiation now\r\n")
        # nothing for b in the clear
        r, _, _ = select.select([raw], [], [], 0.5)
        self.assertEqual(r, [], "an answer in the clear after STARTTLS")
        ctx = ssl.create_default_context(cafile=self.cert)
        t = ctx.wrap_socket(raw, server_hostname="localhost")
        t.settimeout(1.0)
        # nor inside TLS
        try:
            early = t.recv(4096)
        except (socket.timeout, TimeoutError):
            early = b""
        self.assertNotIn(b"b ", early)
        t.settimeout(20)
        t.sendall(b"c NOOP\r\n")
        self.assertEqual(t.recv(4096), b"c OK NOOP completed\r\n")


class Deadline(StoreCase):
    """A short pre-login deadline (the other cases need a long one: a
    busy machine must not cut them off first)."""

    limits = dict(StoreCase.limits, login_timeout="3s")

    def test_deadline_is_absolute(self):
        s, f = self.connect()
        start = time.monotonic()
        lines = []
        # a NOOP every 0.3 s for up to 15 s: the 3 s deadline still ends it
        while time.monotonic() - start < 15:
            try:
                s.sendall(b"n NOOP\r\n")
            except OSError:
                break
            r, _, _ = select.select([s], [], [], 0.3)
            if r:
                line = f.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith(b"* BYE"):
                    break
        took = time.monotonic() - start
        self.assertIn(b"* BYE Autologout; login took too long\r\n", lines)
        self.assertLess(took, 15, "NOOPs kept the session alive")
        self.assertGreaterEqual(took, 2.5)
        self.closed(1, "timeout")


if __name__ == "__main__":
    unittest.main()
