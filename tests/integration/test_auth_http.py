"""test_auth_http.py - ringstore with the HTTP auth hook (auth.http_url,
nginx's auth_http protocol) answered by a Python stdlib http.server.

The passwd-file holds the user with a different password than the one
the responder accepts, so a login that works proves the hook decided.
Covers: imaplib LOGIN accepted and refused, the request headers nginx
would send (escaped password, protocol, attempt counter, client address,
a configured extra header), keep-alive reuse, Auth-Wait as a failure that
waits at least the asked delay, and the responder down as [UNAVAILABLE]
(a temporary failure, never a wrong password).
"""

import http.server
import imaplib
import os
import threading
import time
import unittest

import harness as h
import rs_harness as rs

USER = rs.DEMO_USER
FILE_PW = "file-only-password"
HTTP_PW = "h t%p\"#'"  # every byte nginx escapes that IMAP can quote
WAIT_PW = "please-wait"
MASTER, MASTER_PW = "gate-master", "master-secret-pw"


class Responder(http.server.ThreadingHTTPServer):
    """An auth_http service: records every request's headers."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []  # (client port, {header: value})
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, *args):
        pass

    def do_GET(self):
        hdrs = {k: v for k, v in self.headers.items()}
        with self.server.lock:
            self.server.requests.append((self.client_address[1], hdrs))
        user = hdrs.get("Auth-User", "")
        pw = hdrs.get("Auth-Pass", "")
        self.send_response(200)
        if user == USER and pw == "h%20t%25p%22%23%27":
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", "127.0.0.1")
            self.send_header("Auth-Port", "143")
        elif pw == WAIT_PW:
            self.send_header("Auth-Status", "Temporary failure")
            self.send_header("Auth-Wait", "2")
        else:
            self.send_header("Auth-Status", "Invalid login or password")
            self.send_header("Auth-Error-Code", "535 5.7.8")
        self.send_header("Content-Length", "0")
        self.end_headers()


class AuthHttpTest(unittest.TestCase):
    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: FILE_PW, MASTER: MASTER_PW})
        self.http = Responder()
        t = threading.Thread(target=self.http.serve_forever, daemon=True)
        t.start()
        self.addCleanup(self.http.server_close)
        self.addCleanup(self.http.shutdown)
        url = "http://127.0.0.1:%d/auth" % self.http.server_address[1]
        cfg = rs.store_config(
            self.dir, h.free_port(), h.free_port(),
            limits={"login_fail_delay": "100ms"},
            auth={"http_url": url, "http_timeout": "2s",
                  "http_connections": 2, "cache_ttl": "0s",
                  "http_header": ["X-Ringtest: yes"],
                  "master_users": [MASTER], "master_nets": ["127.0.0.0/8"]})
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=30)
        self.addCleanup(rs.logout_quietly, m)
        return m

    def requests(self):
        with self.http.lock:
            return list(self.http.requests)

    def test_login_ok_and_headers(self):
        m = self.imap()
        typ, _ = m.login(USER, HTTP_PW)
        self.assertEqual(typ, "OK")
        self.assertEqual(m.select("INBOX")[0], "OK")
        reqs = self.requests()
        self.assertEqual(len(reqs), 1)
        hd = reqs[0][1]
        self.assertEqual(hd["Auth-Method"], "plain")
        self.assertEqual(hd["Auth-User"], USER)
        self.assertEqual(hd["Auth-Pass"], "h%20t%25p%22%23%27")
        self.assertEqual(hd["Auth-Protocol"], "imap")
        self.assertEqual(hd["Auth-Login-Attempt"], "1")
        self.assertEqual(hd["Client-IP"], "127.0.0.1")
        self.assertIn("Client-Host", hd)
        self.assertEqual(hd["X-Ringtest"], "yes")

    def test_refused_and_attempts(self):
        m = self.imap()
        # the passwd-file's own password is not asked of the file
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login(USER, FILE_PW)
        self.assertIn(b"AUTHENTICATIONFAILED", str(cm.exception).encode())
        with self.assertRaises(imaplib.IMAP4.error):
            m.login(USER, "wrong")
        attempts = [r[1]["Auth-Login-Attempt"] for r in self.requests()]
        self.assertEqual(attempts, ["1", "2"])
        # then the right one on the same connection
        self.assertEqual(m.login(USER, HTTP_PW)[0], "OK")

    def test_master_is_verified_by_the_file(self):
        """ringgate's master identity never depends on the site's hook."""
        m = self.imap()
        typ, _ = m.authenticate(
            "PLAIN", lambda _: ("%s\0%s\0%s" % (USER, MASTER, MASTER_PW))
            .encode())
        self.assertEqual(typ, "OK")
        self.assertEqual(self.requests(), [])
        m2 = self.imap()
        with self.assertRaises(imaplib.IMAP4.error):
            m2.authenticate("PLAIN", lambda _: ("%s\0%s\0%s" % (
                USER, MASTER, "wrong")).encode())
        self.assertEqual(self.requests(), [])

    def test_keep_alive(self):
        for _ in range(3):
            m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=30)
            self.assertEqual(m.login(USER, HTTP_PW)[0], "OK")
            m.logout()
        ports = {r[0] for r in self.requests()}
        self.assertEqual(len(self.requests()), 3)
        self.assertLess(len(ports), 3, "no connection was reused")
        samples = h.parse_metrics(h.http_get(self.store.admin_port,
                                             "/metrics")[2].decode())
        self.assertGreaterEqual(
            h.metric(samples, "ringstore_auth_http_reused_total"), 1)
        self.assertEqual(h.metric(samples, "ringstore_auth_http_requests_total",
                                  result="ok"), 3)

    def test_auth_wait_is_a_failure_after_the_wait(self):
        m = self.imap()
        t0 = time.monotonic()
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login(USER, WAIT_PW)
        waited = time.monotonic() - t0
        self.assertIn(b"AUTHENTICATIONFAILED", str(cm.exception).encode())
        # the hook asked for 2 s; login_fail_delay alone is 100 ms
        self.assertGreaterEqual(waited, 1.9)
        samples = h.parse_metrics(h.http_get(self.store.admin_port,
                                             "/metrics")[2].decode())
        self.assertEqual(h.metric(samples, "ringstore_auth_http_requests_total",
                                  result="wait"), 1)

    def test_responder_down_is_temporary(self):
        self.http.shutdown()
        self.http.server_close()
        m = self.imap()
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login(USER, HTTP_PW)
        self.assertIn(b"UNAVAILABLE", str(cm.exception).encode())
        samples = h.parse_metrics(h.http_get(self.store.admin_port,
                                             "/metrics")[2].decode())
        self.assertEqual(h.metric(samples, "ringstore_auth_http_requests_total",
                                  result="tempfail"), 1)


if __name__ == "__main__":
    unittest.main()
