"""test_relay.py - ringgate's first vertical slice: a TLS-terminating relay.

Each test starts its own ringgate on free ports in a temporary directory,
with a relay listener (implicit TLS, ALPN "imap") in front of a Python
upstream (echo, sink or source), and talks to it with Python's ssl module
and the openssl command. Covered: byte-exact relaying (1 byte, 10 MiB,
200 concurrent connections), TLS 1.0/1.1 refused, strict ALPN, bounded
memory against a slow reader and a slow writer, SIGHUP certificate swap
with a live session, the admin listener (/metrics checked by promtool and
against the bytes sent, /healthz, 404/405), and an upstream that is down.
"""

import hashlib
import os
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

import harness as h

RELAY = "imaps"


class RelayCase(unittest.TestCase):
    """Starts a ringgate relaying RELAY to self.up (an echo by default)."""

    upstream_mode = "echo"

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
        self.up = h.upstream(self, self.upstream_mode)
        self.gate = self.start_gate(self.up.addr)

    def start_gate(self, upstream_addr, **overrides):
        relays = [{"name": RELAY, "listen": "127.0.0.1:%d" % h.free_port(),
                   "tls": True, "alpn": "imap", "upstream": upstream_addr}]
        cfg = h.base_config([(self.cert, self.key)], relays, h.free_port(),
                            **overrides)
        return h.Ringgate(self.dir, cfg).start(self)

    @property
    def port(self):
        return self.gate.port(RELAY)

    def ctx(self, **kw):
        kw.setdefault("cafiles", [self.cert])
        return h.client_context(**kw)

    def connect(self, **kw):
        s = h.tls_connect(self.port, self.ctx(**kw))
        self.addCleanup(s.close)
        return s

    def assert_echo(self, s, payload):
        s.sendall(payload)
        self.assertEqual(h.recv_exact(s, len(payload)), payload)


class TestRelayData(RelayCase):

    def test_openssl_s_client_line_echoed(self):
        line = b"a1 NOOP relayed by ringgate\n"
        p = subprocess.Popen(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
             "-alpn", "imap", "-servername", "localhost",
             "-CAfile", self.cert, "-verify_return_error", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            p.stdin.write(line)
            p.stdin.flush()
            got = b""
            deadline = time.monotonic() + 15
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                r, _, _ = select.select([p.stdout], [], [], 0.5)
                if r:
                    data = os.read(p.stdout.fileno(), 4096)
                    if not data:
                        break
                    got += data
            if got != line:
                p.kill()
                _, err = p.communicate(timeout=10)
                self.fail("s_client got %r; stderr:\n%s" % (got, err.decode(
                    "utf-8", "replace")))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)

    def test_one_byte(self):
        s = self.connect(alpn=["imap"])
        self.assert_echo(s, b"x")

    def test_ten_mib_both_ways(self):
        payload = os.urandom(10 * 1024 * 1024)
        s = self.connect(alpn=["imap"])
        digest, got = h.exchange(s, payload)
        self.assertEqual(got, len(payload))
        self.assertEqual(digest, hashlib.sha256(payload).hexdigest())
        # what the upstream saw equals what we sent
        self.assertEqual(self.up.counters()["received"], len(payload))

    def test_client_close_closes_upstream_side(self):
        s = self.connect()
        self.assert_echo(s, b"hello\r\n")
        s.close()
        self.gate.wait_metric("ringgate_connections_open", 0,
                              listener=RELAY)

    def test_200_concurrent_connections(self):
        n, size = 200, 4096
        ready = threading.Barrier(n + 1, timeout=60)
        release = threading.Event()
        errors = []
        ctx = self.ctx(alpn=["imap"])

        def client(i):
            s = None
            try:
                s = h.tls_connect(self.port, ctx)
                payload = os.urandom(size)
                s.sendall(payload)
                if h.recv_exact(s, size) != payload:
                    raise AssertionError("client %d: echo differs" % i)
            except Exception as e:
                errors.append("client %d: %r" % (i, e))
            try:
                ready.wait()
                release.wait(60)
            except threading.BrokenBarrierError:
                pass
            finally:
                if s:
                    s.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(n)]
        for t in threads:
            t.start()
        try:
            ready.wait()
            # every session is open at once
            self.assertEqual(self.gate.metric("ringgate_connections_open",
                                              listener=RELAY), n)
        except threading.BrokenBarrierError:
            pass
        finally:
            release.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        self.gate.wait_metric("ringgate_connections_accepted_total", n,
                              listener=RELAY)
        self.gate.wait_metric("ringgate_connections_open", 0, listener=RELAY,
                              timeout=20)


class TestTLSPolicy(RelayCase):

    def failures(self, **labels):
        return self.gate.metric("ringgate_tls_handshake_failures_total",
                                listener=RELAY, **labels)

    def assert_refused_version(self, version):
        before = self.failures()
        ctx = self.ctx(legacy=True, min_version=version, max_version=version)
        with self.assertRaises(ssl.SSLError) as cm:
            self.connect_raw(ctx)
        text = str(cm.exception).lower()
        self.assertNotIn("no protocols available", text,
                         "our own client refused to offer %s" % version)
        self.assertIn("protocol version", text,
                      "expected the server's protocol_version alert")
        self.gate.wait_metric("ringgate_tls_handshake_failures_total",
                              lambda v: v >= before + 1, listener=RELAY)
        self.gate.wait_metric("ringgate_tls_handshake_failures_total",
                              lambda v: v >= 1, listener=RELAY,
                              reason="protocol_version")

    def connect_raw(self, ctx, port=None):
        s = h.tls_connect(port or self.port, ctx)
        self.addCleanup(s.close)
        return s

    def test_tls1_0_refused(self):
        self.assert_refused_version(ssl.TLSVersion.TLSv1)

    def test_tls1_1_refused(self):
        self.assert_refused_version(ssl.TLSVersion.TLSv1_1)

    def test_tls1_1_refused_openssl_cli(self):
        p = h.run(["openssl", "s_client", "-connect",
                   "127.0.0.1:%d" % self.port, "-tls1_1",
                   "-cipher", "DEFAULT:@SECLEVEL=0"],
                  input="", timeout=30, check=False)
        out = (p.stdout + p.stderr).lower()
        if "no protocols available" in out or "unknown option" in out:
            self.skipTest("this openssl cannot offer TLS 1.1 at all")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("alert protocol version", out)

    def test_tls1_2_and_1_3_accepted(self):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                s = self.connect(min_version=v, max_version=v)
                self.assertEqual(s.version(), v.name.replace("_", "."))
                self.assert_echo(s, b"ok\r\n")

    def test_alpn_imap_accepted(self):
        s = self.connect(alpn=["imap"])
        self.assertEqual(s.selected_alpn_protocol(), "imap")
        self.assert_echo(s, b"a1 CAPABILITY\r\n")

    def test_alpn_absent_accepted(self):
        s = self.connect()
        self.assertIsNone(s.selected_alpn_protocol())
        self.assert_echo(s, b"a1 CAPABILITY\r\n")

    def test_alpn_other_protocol_refused(self):
        with self.assertRaises(ssl.SSLError) as cm:
            self.connect(alpn=["http/1.1"])
        self.assertIn("no application protocol", str(cm.exception).lower())
        self.gate.wait_metric("ringgate_tls_handshake_failures_total",
                              lambda v: v >= 1, listener=RELAY,
                              reason="no_application_protocol")

    def test_alpn_list_with_imap_accepted(self):
        s = self.connect(alpn=["http/1.1", "imap"])
        self.assertEqual(s.selected_alpn_protocol(), "imap")

    def test_certificate_and_expiry_metric(self):
        s = self.connect()
        self.assertEqual(s.getpeercert(binary_form=True), h.der_of(self.cert))
        self.assertAlmostEqual(
            self.gate.metric("ringgate_tls_certificate_expiry_timestamp_"
                             "seconds", listener=RELAY),
            h.cert_not_after(self.cert), delta=1)


class TestSlowReader(RelayCase):
    """A peer that stops reading must stop ringgate reading from the other
    side: memory stays bounded and the writer ends up blocked."""

    upstream_mode = "source"

    def rss_limit_kib(self):
        # ASan's quarantine keeps freed memory resident, so allow more.
        return (160 if h.is_asan_build() else 32) * 1024

    def test_client_that_does_not_read(self):
        baseline = self.gate.rss_kib()
        s = self.connect(alpn=["imap"])
        h.wait_for(lambda: self.up.counters()["sent"] > 0, 10,
                   what="the source to start writing")

        # Wait until the source is blocked: its count stops moving.
        def plateau():
            a = self.up.counters()["sent"]
            time.sleep(2)
            return self.up.counters()["sent"] == a
        h.wait_for(plateau, 30, 0, "the source to be blocked")
        time.sleep(3)
        blocked = self.up.counters()["sent"]
        grown = self.gate.rss_kib() - baseline
        self.assertLess(grown, self.rss_limit_kib(),
                        "RSS grew by %d KiB while the client did not read "
                        "(source wrote %d bytes)" % (grown, blocked))
        self.assertEqual(self.up.counters()["sent"], blocked)

        # Reading resumes the stream, byte-exact from the start.
        want = blocked + 4 * 1024 * 1024
        got = 0
        s.settimeout(h.IO_TIMEOUT)
        while got < want:
            data = s.recv(1 << 20)
            self.assertTrue(data, "EOF after %d bytes" % got)
            self.assertEqual(data, h.pattern(got, len(data)),
                             "stream differs at offset %d" % got)
            got += len(data)
        self.assertGreater(self.up.counters()["sent"], blocked)


class TestSlowUpstream(RelayCase):

    upstream_mode = "sink"

    def test_upstream_that_does_not_read(self):
        self.up.paused.set()
        baseline = self.gate.rss_kib()
        s = self.connect(alpn=["imap"])
        sent = h.pump_send(s, stall=2.0, limit=40.0)
        self.assertGreater(sent, 0)
        time.sleep(3)
        grown = self.gate.rss_kib() - baseline
        limit = (160 if h.is_asan_build() else 32) * 1024
        self.assertLess(grown, limit,
                        "RSS grew by %d KiB while the upstream did not read "
                        "(client wrote %d bytes)" % (grown, sent))
        # Nothing more gets in while the sink is stalled.
        self.assertEqual(h.pump_send(s, stall=1.0, limit=5.0, offset=sent),
                         sent, "ringgate kept reading from the client")
        self.assertEqual(self.up.counters()["received"], 0)

        # The sink reads again: everything written arrives, then more.
        self.up.paused.clear()
        h.wait_for(lambda: self.up.counters()["received"] == sent, 30,
                   what="the sink to receive all %d bytes" % sent)
        more = h.pump_send(s, stall=1.0, limit=3.0, offset=sent)
        self.assertGreater(more, sent)


class TestReload(RelayCase):

    def test_sighup_swaps_certificate_old_session_lives(self):
        old_der = h.der_of(self.cert)
        ctx = self.ctx(cafiles=[self.cert])
        old = h.tls_connect(self.port, ctx)
        self.addCleanup(old.close)
        self.assert_echo(old, b"before reload\r\n")
        self.assertEqual(old.getpeercert(binary_form=True), old_der)
        old_expiry = self.gate.metric(
            "ringgate_tls_certificate_expiry_timestamp_seconds",
            listener=RELAY)

        # New certificate (shorter life, so the expiry metric moves) at the
        # same paths the config names.
        new_cert, new_key = h.make_cert(self.dir, "ec", days=30, stem="new")
        os.replace(new_key, self.key)
        os.replace(new_cert, self.cert)
        new_der = h.der_of(self.cert)
        self.assertNotEqual(new_der, old_der)
        self.gate.reload()

        seen = h.client_context(verify=False)

        def served_new():
            with h.tls_connect(self.port, seen) as s:
                return s.getpeercert(binary_form=True) == new_der
        h.wait_for(served_new, 10, 0.2, "a new connection to get the new "
                   "certificate")
        self.assertTrue(self.gate.proc.poll() is None, "ringgate died")

        # The old session still relays, both ways, with its old certificate.
        for i in range(3):
            self.assert_echo(old, b"after reload %d\r\n" % i)
        self.assertEqual(old.getpeercert(binary_form=True), old_der)
        self.gate.wait_metric(
            "ringgate_tls_certificate_expiry_timestamp_seconds",
            lambda v: abs(v - h.cert_not_after(self.cert)) <= 1,
            listener=RELAY)
        self.assertLess(self.gate.metric(
            "ringgate_tls_certificate_expiry_timestamp_seconds",
            listener=RELAY), old_expiry)

    def test_sighup_with_broken_certificate_keeps_old(self):
        der = h.der_of(self.cert)
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        self.gate.reload()
        time.sleep(1)
        self.assertIsNone(self.gate.proc.poll(), "ringgate died on reload")
        s = h.tls_connect(self.port, h.client_context(verify=False))
        self.addCleanup(s.close)
        self.assertEqual(s.getpeercert(binary_form=True), der)
        self.assert_echo(s, b"still here\r\n")


class TestAdmin(RelayCase):

    def test_healthz(self):
        status, _, body = h.http_get(self.gate.admin_port, "/healthz")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"ok"), body)

    def test_unknown_path_404(self):
        self.assertEqual(h.http_get(self.gate.admin_port, "/nope")[0], 404)

    def test_wrong_method_405(self):
        for method in ("DELETE", "PUT", "POST"):
            with self.subTest(method=method):
                status, headers, _ = h.http_get(self.gate.admin_port,
                                                "/metrics", method=method)
                self.assertEqual(status, 405)
                self.assertIn("GET", headers.get("allow", ""))

    def test_request_with_body_refused(self):
        status = h.http_get(self.gate.admin_port, "/metrics", method="POST",
                            body=b"x" * 100)[0]
        self.assertIn(status, (405, 413))

    def test_head_metrics(self):
        status, headers, body = h.http_get(self.gate.admin_port, "/metrics",
                                           method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")

    def test_garbage_request_400_or_closed(self):
        with socket.create_connection(("127.0.0.1", self.gate.admin_port),
                                      timeout=10) as c:
            c.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        if data:
            self.assertTrue(data.startswith(b"HTTP/1."), data[:80])
            self.assertIn(data.split(b" ")[1], (b"400", b"405", b"413", b"414", b"431"))
        self.assertEqual(h.http_get(self.gate.admin_port, "/healthz")[0], 200)

    def test_metrics_content_type_and_build_info(self):
        status, headers, body = h.http_get(self.gate.admin_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers.get("content-type", ""))
        self.assertIn("version=0.0.4", headers.get("content-type", ""))
        m = h.parse_metrics(body.decode())
        self.assertTrue(h.metric_series(m, "ringgate_build_info"))

    def test_metrics_pass_promtool(self):
        promtool = h.which("promtool")
        if promtool is None:
            if h.IN_CI:
                self.fail("promtool is missing; scripts/deps.sh installs "
                          "Debian's prometheus package for it")
            self.skipTest("promtool not installed (apt-get install "
                          "prometheus)")
        # Traffic first, so every family has samples, histograms included.
        s = self.connect()
        self.assert_echo(s, b"x" * 1000)
        s.close()
        self.gate.wait_metric("ringgate_connections_open", 0, listener=RELAY)
        text = self.gate.metrics_text()
        p = h.run([promtool, "check", "metrics"], input=text, check=False)
        self.assertEqual(p.returncode, 0, "promtool:\n%s%s\n--- metrics:\n%s"
                         % (p.stdout, p.stderr, text))

    def test_counters_match_traffic(self):
        sizes = [1, 1000, 70000, 1 << 20]
        for n in sizes:
            s = self.connect(alpn=["imap"])
            payload = os.urandom(n)
            digest, got = h.exchange(s, payload)
            self.assertEqual(got, n)
            s.close()
        total = sum(sizes)
        g = self.gate
        g.wait_metric("ringgate_connections_open", 0, listener=RELAY)
        g.wait_metric("ringgate_relay_bytes_total", total, listener=RELAY,
                      direction="client_to_upstream")
        g.wait_metric("ringgate_relay_bytes_total", total, listener=RELAY,
                      direction="upstream_to_client")
        # a session ends when both of its sides have (the upstream side
        # may still be in its lingering close when the client's is gone)
        g.wait_metric("ringgate_relay_session_duration_seconds_count",
                      len(sizes), listener=RELAY)
        m = g.metrics()
        n = len(sizes)
        self.assertEqual(h.metric(m, "ringgate_connections_accepted_total",
                                  listener=RELAY), n)
        self.assertEqual(h.metric(m, "ringgate_tls_handshakes_total",
                                  listener=RELAY), n)
        self.assertEqual(h.metric(m, "ringgate_connections_closed_total",
                                  listener=RELAY), n)
        self.assertEqual(h.metric(m, "ringgate_relay_session_duration_"
                                  "seconds_count", listener=RELAY), n)
        self.assertEqual(h.metric(m, "ringgate_relay_session_duration_"
                                  "seconds_bucket", listener=RELAY,
                                  le="+Inf"), n)
        self.assertEqual(h.metric(m, "ringgate_upstream_connect_failures_"
                                  "total", listener=RELAY), 0)


class TestUpstreamDown(RelayCase):

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
        self.dead = "127.0.0.1:%d" % h.free_port()  # nothing listens
        self.gate = self.start_gate(self.dead)

    def test_client_closed_promptly_and_counted(self):
        start = time.monotonic()
        try:
            s = self.connect()
            s.settimeout(10)
            s.sendall(b"a1 NOOP\r\n")
            data = s.recv(100)
            self.assertEqual(data, b"", "got bytes from a dead upstream")
        except (ssl.SSLError, ConnectionError, BrokenPipeError):
            pass  # closed during or right after the handshake: fine
        self.assertLess(time.monotonic() - start, 8,
                        "the client was not closed promptly")
        self.gate.wait_metric("ringgate_upstream_connect_failures_total", 1,
                              listener=RELAY)
        self.gate.wait_metric("ringgate_connections_open", 0, listener=RELAY)
        self.assertGreaterEqual(self.gate.metric(
            "ringgate_connections_closed_total", listener=RELAY), 1)


class TestDrain(RelayCase):

    def test_sigterm_exits_zero_with_live_session(self):
        s = self.connect()
        self.assert_echo(s, b"x")
        self.gate.signal(signal.SIGTERM)
        # drain_timeout is 2s in the test config
        self.assertEqual(self.gate.proc.wait(15), 0, self.gate.stderr())

    def test_drain_keeps_live_session_refuses_new_exits_when_done(self):
        # a drain long enough that only the session's end can stop it
        self.gate.stop()
        self.gate = self.start_gate(self.up.addr,
                                    daemon={"drain_timeout": "60s"})
        s = self.connect()
        self.assert_echo(s, b"before")
        self.gate.signal(signal.SIGTERM)
        # listeners close at once: a new connection is refused ...
        h.wait_for(lambda: self._refused(), what="listener closed")
        # ... while the live session keeps relaying during the drain
        self.assert_echo(s, b"during the drain")
        self.assertIsNone(self.gate.proc.poll())
        # and when it ends, ringgate exits without waiting for the timeout
        s.close()
        self.assertEqual(self.gate.proc.wait(30), 0, self.gate.stderr())
        self.assertIn("daemon.stopped", self.gate.stderr())

    def _refused(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass  # reset or timed out while the listeners were closing
        return False


if __name__ == "__main__":
    unittest.main()
