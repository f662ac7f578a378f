"""test_gate_gaps.py - the gaps of issue 12 closed after the front ends
landed, each with real clients against real ringstores:

- TestAuthHttpRoute: the HTTP auth hook (nginx auth_http, answered by a
  Python http.server) names the second of two ringstores in Auth-Server/
  Auth-Port; ringgate logs the user in there (imaplib, poplib), and an
  address that is no configured back end gets the temporary error.

Fixtures come from test_gate_front.py.
"""

import http.server
import imaplib
import os
import poplib
import threading
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import (MASTER, MASTER_PW, fresh_port, gate_cfg,
                             port_of, start_proc, store_cfg)


class _HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes):
        super().__init__(("127.0.0.1", 0), _Hook)
        self.routes = routes  # user -> {protocol: port}
        self.seen = []


class _Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        user = self.headers.get("Auth-User", "")
        pw = self.headers.get("Auth-Pass", "")
        proto = self.headers.get("Auth-Protocol", "")
        self.server.seen.append((user, proto))
        route = self.server.routes.get(user)
        self.send_response(200)
        if route is not None and pw == "hook-" + user:
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", "127.0.0.1")
            self.send_header("Auth-Port", str(route[proto]))
        else:
            self.send_header("Auth-Status", "Invalid login or password")
        self.send_header("Content-Length", "0")
        self.end_headers()


class TestAuthHttpRoute(unittest.TestCase):
    """Two ringstores; the hook sends every user to store2, whose
    addresses are configured; one user to an address nobody configured."""

    USERS = ["u%d@example.test" % i for i in range(10)]
    STRAY = "stray@example.test"

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        users = {u: "pw-" + u for u in self.USERS + [self.STRAY]}
        self.stores = []
        for name in ("store1", "store2"):
            d = os.path.join(self.dir, name)
            os.mkdir(d)
            rs.write_passwd(os.path.join(d, "passwd"),
                            dict(users, **{MASTER: MASTER_PW}))
            self.stores.append(start_proc(
                rs.Ringstore(d, store_cfg(d, [(self.cert, key)])), self))
        s2 = self.stores[1].cfg
        to2 = {"imap": port_of(s2, "imap"), "pop3": port_of(s2, "pop3"),
               "smtp": port_of(s2, "submission")}
        routes = {u: to2 for u in self.USERS}
        routes[self.STRAY] = {"imap": fresh_port(), "pop3": fresh_port(),
                              "smtp": fresh_port()}
        self.http = _HookServer(routes)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.addCleanup(self.http.server_close)
        self.addCleanup(self.http.shutdown)
        cfg = gate_cfg(self.dir, [(self.cert, key)], self.stores[0].cfg)
        cfg["backends"] = [
            {"name": "store%d" % (i + 1),
             "imap": "127.0.0.1:%d" % port_of(st.cfg, "imap"),
             "pop3": "127.0.0.1:%d" % port_of(st.cfg, "pop3"),
             "submission": "127.0.0.1:%d" % port_of(st.cfg, "submission")}
            for i, st in enumerate(self.stores)]
        # the passwd-file's passwords are not the hook's: a login that
        # works proves the hook decided
        rs.write_passwd(os.path.join(self.dir, "gate.passwd"),
                        {u: "file-" + u for u in users})
        cfg["auth"]["http_url"] = ("http://127.0.0.1:%d/auth" %
                                   self.http.server_address[1])
        self.gate = start_proc(h.Ringgate(self.dir, cfg), self)

    def gate_port(self, sec, i):
        return int(self.gate.cfg[sec][i]["listen"].rsplit(":", 1)[1])

    def ctx(self):
        return h.client_context(cafiles=[self.cert])

    def imap_login(self, user):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.gate_port("imap", 1),
                              ssl_context=self.ctx(), timeout=20)
        try:
            m.login(user, "hook-" + user)
        except imaplib.IMAP4.error as e:
            rs.logout_quietly(m)
            return str(e)
        m.select("INBOX")
        m.logout()
        return "ok"

    def homes(self):
        out = {}
        for i, st in enumerate(self.stores):
            root = os.path.join(st.dir, "mail", "example.test")
            for local in (os.listdir(root) if os.path.isdir(root) else []):
                out.setdefault(local + "@example.test", set()).add(i)
        return out

    def test_hook_names_the_second_store(self):
        # hashing alone spreads these ten over both stores
        # (test_gate_front.TestTwoStores); the hook puts all on store2
        for u in self.USERS:
            self.assertEqual(self.imap_login(u), "ok", u)
        homes = self.homes()
        for u in self.USERS:
            self.assertEqual(homes.get(u), {1}, (u, homes))
        self.assertIn((self.USERS[0], "imap"), self.http.seen)
        # POP3 through the hook too (the pop3 address of store2)
        p = poplib.POP3_SSL("127.0.0.1", self.gate_port("pop3", 1),
                            context=self.ctx(), timeout=20)
        p.user(self.USERS[1])
        self.assertTrue(p.pass_("hook-" + self.USERS[1]).startswith(b"+OK"))
        self.assertEqual(p.stat()[0], 0)
        p.quit()
        self.assertIn((self.USERS[1], "pop3"), self.http.seen)
        # an address that is no configured back end: temporary error
        self.assertIn("UNAVAILABLE", self.imap_login(self.STRAY))
        self.assertNotIn(self.STRAY, self.homes())
        self.assertEqual(self.gate.metric(
            "ringgate_auth_http_route_refused_total", proto="imap"), 1)
        self.assertIn("gate.auth_http_route_refused", self.gate.stderr())
        self.assertEqual(self.gate.metric(
            "ringgate_backend_logins_total", proto="pop3", result="ok"), 1)


if __name__ == "__main__":
    unittest.main()
