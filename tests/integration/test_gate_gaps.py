"""test_gate_gaps.py - the gaps of issue 12 closed after the front ends
landed, each with real clients against real ringstores:

- TestAuthHttpRoute: the HTTP auth hook (nginx auth_http, answered by a
  Python http.server) names the second of two ringstores in Auth-Server/
  Auth-Port; ringgate logs the user in there (imaplib, poplib), and an
  address that is no configured back end gets the temporary error, and
  is used as is only with route.auth_http_any.
- TestApop: POP3 APOP (poplib's .apop()) at ringgate only behind
  auth.legacy_mechanisms: a timestamp in the greeting and a {PLAIN}
  password; without the switch no timestamp and APOP is unknown.
- TestPreLoginLimits: each pre-login limit on each of the three
  protocols, counted in /metrics: failed AUTH attempts per connection
  (imaplib, poplib, smtplib), lines over line_max_login, bad commands,
  the idle timeout and the total pre-login time (raw sockets).
- TestExternal: SASL EXTERNAL with a client certificate (made here with
  the openssl CLI) on ringgate's implicit-TLS IMAP listener, the CA in
  tls.client_ca_file: imaplib logs in without a password; a certificate
  for a user ringgate does not know fails; one from another CA fails the
  handshake; without a certificate no AUTH=EXTERNAL.

Fixtures come from test_gate_front.py.
"""

import hashlib
import http.server
import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import (BOB, BOB_PW, MASTER, MASTER_PW, USER, PASSWORD,
                             fresh_port, gate_cfg, port_of, start_proc,
                             store_cfg)


def store_and_gate(testcase, gate_edit):
    """A ringstore (USER, BOB, the master) and a ringgate in front of it
    whose config gate_edit(cfg, directory) may change. (dir, cert,
    store, gate)."""
    d = h.temp_dir(testcase)
    cert, key = h.make_cert(d, "ec", stem="server")
    rs.write_passwd(os.path.join(d, "passwd"),
                    {USER: PASSWORD, BOB: BOB_PW, MASTER: MASTER_PW})
    store = start_proc(rs.Ringstore(d, store_cfg(d, [(cert, key)])),
                       testcase)
    cfg = gate_cfg(d, [(cert, key)], store.cfg)
    gate_edit(cfg, d)
    gate = start_proc(h.Ringgate(d, cfg), testcase)
    return d, cert, store, gate


def listener_port(proc, name):
    for sec in ("imap", "pop3", "submission"):
        for r in proc.cfg.get(sec) or []:
            if r["name"] == name:
                return int(r["listen"].rsplit(":", 1)[1])
    raise KeyError(name)


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

    def test_any_address_only_with_the_switch(self):
        # store2 leaves the pool: the hook's address is no back end now
        self.gate.stop_checked()
        self.gate.cfg["backends"] = self.gate.cfg["backends"][:1]
        self.gate.start()
        self.assertIn("UNAVAILABLE", self.imap_login(self.USERS[0]))
        self.assertNotIn(self.USERS[0], self.homes())
        # route.auth_http_any = true: used as is
        self.gate.stop_checked()
        self.gate.cfg["route"] = {"auth_http_any": True}
        self.gate.start()
        self.assertEqual(self.imap_login(self.USERS[0]), "ok")
        self.assertEqual(self.homes().get(self.USERS[0]), {1})
        h.wait_for(lambda: "backend=auth_http:127.0.0.1:" in
                   self.gate.stderr(), what="the audit line")


class TestApop(unittest.TestCase):
    """APOP with the legacy switch on (USER has a {PLAIN} password, BOB a
    SCRAM one) and off."""

    PLAIN_PW = "plain-apop-secret"

    def legacy(self, cfg, d):
        cfg["auth"]["legacy_mechanisms"] = True
        cfg["auth"]["allow_plaintext"] = True
        with open(os.path.join(d, "gate.passwd"), "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (USER, self.PLAIN_PW))
            f.write("%s:%s::::::\n" % (BOB, rs.scram_hash(BOB_PW)))

    def pop3s(self, cert, gate):
        p = poplib.POP3_SSL("127.0.0.1", listener_port(gate, "pop3s"),
                            context=h.client_context(cafiles=[cert]),
                            timeout=20)
        self.addCleanup(self.quietly, p.close)
        return p

    @staticmethod
    def quietly(fn):
        try:
            fn()
        except Exception:
            pass

    def test_apop_behind_the_legacy_switch(self):
        d, cert, store, gate = store_and_gate(self, self.legacy)
        p = self.pop3s(cert, gate)
        self.assertRegex(p.getwelcome(), rb"<[^<>@]+@[^<>]+>$")
        self.assertTrue(p.apop(USER, self.PLAIN_PW).startswith(b"+OK"))
        self.assertEqual(p.stat()[0], 0)  # relayed to ringstore
        p.quit()
        # a wrong secret; a user without a {PLAIN} password
        for user, secret in ((USER, "wrong"), (BOB, BOB_PW)):
            p = self.pop3s(cert, gate)
            with self.assertRaises(poplib.error_proto) as e:
                p.apop(user, secret)
            self.assertIn(b"[AUTH]", e.exception.args[0])
        # a replayed digest from another connection's timestamp fails
        p1, p2 = self.pop3s(cert, gate), self.pop3s(cert, gate)
        ts = re.search(rb"<.*>", p1.getwelcome()).group(0)
        digest = hashlib.md5(ts + self.PLAIN_PW.encode()).hexdigest()
        self.assertNotEqual(ts, re.search(rb"<.*>", p2.getwelcome()).group(0))
        with self.assertRaises(poplib.error_proto):
            p2._shortcmd("APOP %s %s" % (USER, digest))
        self.assertTrue(p1._shortcmd("APOP %s %s" % (USER, digest))
                        .startswith(b"+OK"))
        p1.quit()
        self.assertEqual(gate.metric("ringgate_pop3_logins_total",
                                     result="ok"), 2)
        # before STLS on the plaintext listener: refused
        p = poplib.POP3("127.0.0.1", listener_port(gate, "pop3"), timeout=20)
        self.addCleanup(self.quietly, p.close)
        with self.assertRaises(poplib.error_proto) as e:
            p.apop(USER, self.PLAIN_PW)
        self.assertIn(b"TLS", e.exception.args[0])

    def test_no_apop_without_the_switch(self):
        d, cert, store, gate = store_and_gate(self, lambda cfg, d: None)
        p = self.pop3s(cert, gate)
        self.assertNotIn(b"<", p.getwelcome())
        with self.assertRaises(poplib.error_proto) as e:
            p._shortcmd("APOP %s %s" % (USER, "0" * 32))
        self.assertIn(b"Unknown command", e.exception.args[0])


class TestPreLoginLimits(unittest.TestCase):
    PROTOS = (("imap", "imap"), ("pop3", "pop3"), ("submission", "smtp"))
    BAD = {"imap": b"a FOO\r\n", "pop3": b"FOO\r\n", "smtp": b"FOO\r\n"}
    NOOP = {"imap": b"a NOOP\r\n", "pop3": b"NOOP\r\n",
            "smtp": b"NOOP\r\n"}

    def setUp(self):
        def limits(cfg, d):
            cfg["limits"].update({
                "login_fails": 2, "bad_commands": 3, "line_max_login": "1k",
                "login_idle_timeout": "1s", "login_timeout": "3s",
                "login_fail_delay": "100ms"})
        self.dir, self.cert, self.store, self.gate = store_and_gate(
            self, limits)

    def connect(self, listener):
        s = socket.create_connection(
            ("127.0.0.1", listener_port(self.gate, listener)), timeout=20)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.addCleanup(f.close)
        f.readline()  # greeting
        return s, f

    @staticmethod
    def until_closed(f):
        """Every line until the server closes (the last is its bye)."""
        lines = []
        while True:
            line = f.readline()
            if not line:
                return lines
            lines.append(line)

    def m(self, name, **labels):
        return self.gate.metric(name, **labels)

    def ctx(self):
        return h.client_context(cafiles=[self.cert])

    def test_limits_counted_per_protocol(self):
        # failed AUTH attempts: the second wrong password ends the session
        im = imaplib.IMAP4_SSL("127.0.0.1", listener_port(self.gate, "imaps"),
                               ssl_context=self.ctx(), timeout=20)
        for _ in range(2):
            with self.assertRaises(imaplib.IMAP4.error):
                im.login(USER, "wrong")
        with self.assertRaises((imaplib.IMAP4.abort, OSError)):
            im.noop()
        im.shutdown()
        po = poplib.POP3_SSL("127.0.0.1", listener_port(self.gate, "pop3s"),
                             context=self.ctx(), timeout=20)
        for _ in range(2):
            po.user(USER)
            with self.assertRaises(poplib.error_proto):
                po.pass_("wrong")
        self.assertIn(b"Too many failed logins", po.file.readline())
        self.assertEqual(po.file.readline(), b"")
        po.close()
        sm = smtplib.SMTP_SSL("127.0.0.1",
                              listener_port(self.gate, "submissions"),
                              context=self.ctx(), timeout=20)
        sm.ehlo("client.example")
        sm.user, sm.password = USER, "wrong"
        for _ in range(2):  # one mechanism: login() would try several
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                sm.auth("PLAIN", sm.auth_plain)
        # the 421 goodbye came after the 535; then the end
        self.assertEqual(sm.getreply()[0], 421)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            sm.getreply()
        sm.close()
        # a long line, then bad commands to the goodbye
        for listener, proto in self.PROTOS:
            s, f = self.connect(listener)
            s.sendall(self.NOOP[proto][:-2] + b" " + b"x" * 2000 + b"\r\n")
            first = f.readline()
            self.assertRegex(first, rb"^(a BAD|-ERR|500)", proto)
            s.sendall(self.BAD[proto] * 2)
            lines = self.until_closed(f)
            # two answers, then the goodbye
            self.assertEqual(len(lines), 3, (proto, lines))
            self.assertIn(b"Too many bad commands", lines[-1])
        # idle: nothing after the greeting
        idle = [self.connect(l) for l, _ in self.PROTOS]
        # total: a NOOP every 0.3 s keeps it from idling until the end
        busy = [self.connect(l) for l, _ in self.PROTOS]
        done = [False] * 3
        while not all(done):
            for i, ((s, f), (_, proto)) in enumerate(zip(busy, self.PROTOS)):
                if done[i]:
                    continue
                try:
                    s.sendall(self.NOOP[proto])
                    if not f.readline():
                        done[i] = True
                except OSError:
                    done[i] = True
            time.sleep(0.3)
        byes = [self.until_closed(f)[-1] for _, f in idle]
        self.assertIn(b"idle", byes[0])
        for _, proto in self.PROTOS:
            self.assertEqual(self.m("ringgate_%s_login_closed_total" % proto,
                                    reason="fails"), 1, proto)
            self.assertEqual(self.m("ringgate_%s_login_long_lines_total" %
                                    proto), 1, proto)
            self.assertEqual(self.m("ringgate_%s_login_closed_total" % proto,
                                    reason="bad"), 1, proto)
            self.assertEqual(self.m("ringgate_%s_login_closed_total" % proto,
                                    reason="idle"), 1, proto)
            self.assertEqual(self.m("ringgate_%s_login_closed_total" % proto,
                                    reason="timeout"), 1, proto)
            self.assertEqual(self.m("ringgate_%s_logins_total" % proto,
                                    result="fail"), 2, proto)


def openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, stem):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", stem + ".key",
            "-out", stem + ".pem", "-subj", "/CN=" + stem, "-days", "2",
            cwd=d)


def make_client(d, ca, stem, cn):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", stem + ".key", "-out", stem + ".csr",
            "-subj", "/CN=" + cn, cwd=d)
    openssl("x509", "-req", "-in", stem + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-CAcreateserial", "-out", stem + ".pem",
            "-days", "2", cwd=d)
    return os.path.join(d, stem + ".pem"), os.path.join(d, stem + ".key")


class TestExternal(unittest.TestCase):
    def setUp(self):
        self.certs = {}

        def client_ca(cfg, d):
            make_ca(d, "ca")
            make_ca(d, "other")
            self.certs["user"] = make_client(d, "ca", "user", USER)
            self.certs["stranger"] = make_client(d, "ca", "stranger",
                                                 "nobody@example.test")
            self.certs["other"] = make_client(d, "other", "foreign", USER)
            cfg["tls"]["client_ca_file"] = os.path.join(d, "ca.pem")
        self.dir, self.cert, self.store, self.gate = store_and_gate(
            self, client_ca)

    def imaps(self, who):
        ctx = h.client_context(cafiles=[self.cert])
        if who is not None:
            ctx.load_cert_chain(*self.certs[who])
        m = imaplib.IMAP4_SSL("127.0.0.1", listener_port(self.gate, "imaps"),
                              ssl_context=ctx, timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        return m

    def test_external_with_a_client_certificate(self):
        m = self.imaps("user")
        self.assertIn("AUTH=EXTERNAL", m.capabilities)
        typ, _ = m.authenticate("EXTERNAL", lambda challenge: b"")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.select("INBOX")[0], "OK")  # at ringstore
        m.logout()
        # no certificate: no EXTERNAL offered, and asking for it fails
        m = self.imaps(None)
        self.assertNotIn("AUTH=EXTERNAL", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error):
            m.authenticate("EXTERNAL", lambda challenge: b"")
        # a verified certificate for a user ringgate does not know
        m = self.imaps("stranger")
        with self.assertRaises(imaplib.IMAP4.error):
            m.authenticate("EXTERNAL", lambda challenge: b"")
        # a certificate from another CA: no TLS session at all
        with self.assertRaises((ssl.SSLError, OSError, imaplib.IMAP4.abort)):
            m = self.imaps("other")
            m.noop()
        self.assertEqual(self.gate.metric("ringgate_imap_logins_total",
                                          result="ok"), 1)
        self.assertIn("mech=EXTERNAL", self.gate.stderr())


if __name__ == "__main__":
    unittest.main()
