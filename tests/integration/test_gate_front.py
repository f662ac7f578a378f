"""test_gate_front.py - ringgate's IMAP, POP3 and submission front ends
with a real ringstore behind, driven by clients nobody here wrote
(imaplib, poplib, smtplib, curl, openssl s_client, swaks).

One ringstore (IMAP, POP3 and submission on trusted loopback listeners,
ringgate's master identity in auth.master_users) and one ringgate in front
of it with all six listeners (STARTTLS and implicit TLS per protocol),
shared by the tests of TestFront. Users log in at ringgate against its own
passwd-file; ringgate logs in at ringstore as the master with authzid =
user and relays.

Covered: login and a session through each listener and client; the IMAP
tagged OK carries the back end's CAPABILITY; submit -> delivered -> read
over IMAP and POP3; IDLE sees a message submitted meanwhile; refusals
(LOGIN/AUTH before TLS, MAIL before AUTH, VRFY the same for a user and a
stranger, unknown user and wrong password the same answer, plaintext
pipelined after STARTTLS never executed); one audit line per session.
TestBackendDown: the back end stopped -> the protocol's temporary error at
once; killed mid-session -> BYE / -ERR / 421, ringgate still serving.
TestTwoStores: hashing spread, host= wins, stable across a restart, one
store killed and back. TestConfigCheck: `ringgate -t` with FILE:LINE.
TestLimits: PROXY from a stranger, silent clients cut, the memory bound
with 50 clients that do not read. TestFakeBackends: the client's ID
forwarded; garbage, silence, a half greeting. TestDovecotBehind: Debian's
Dovecot with a master passdb as the back end. Also mbsync, gsasl
SCRAM-SHA-256-PLUS, XCLIENT and SIGHUP in TestFront.
"""

import base64
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import unittest

import harness as h
import rs_harness as rs
import test_upstream_login as ul

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD
BOB, BOB_PW = "bob@example.test", "bob-secret"
MASTER, MASTER_PW = "ringgate-master", "master-secret"
SWAKS = shutil.which("swaks")
CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


_USED_PORTS = set()


def fresh_port():
    """h.free_port(), never one this module handed out before: the
    kernel may offer a just-probed port again, and two listeners of one
    config on the same port refuse to start."""
    while True:
        p = h.free_port()
        if p not in _USED_PORTS:
            _USED_PORTS.add(p)
            return p


def store_cfg(directory, certs):
    """ringstore behind ringgate: trusted plaintext listeners on loopback
    and the master identity."""
    cfg = rs.store_config(directory, fresh_port(), fresh_port(),
                          certs=certs)
    cfg["imap"] = [{"name": "imap", "listen": "127.0.0.1:%d" % fresh_port(),
                    "trusted": True, "starttls": False}]
    cfg["pop3"] = [{"name": "pop3", "listen": "127.0.0.1:%d" % fresh_port(),
                    "trusted": True, "starttls": False}]
    cfg["submission"] = [{"name": "submission",
                          "listen": "127.0.0.1:%d" % fresh_port(),
                          "trusted": True, "starttls": False}]
    cfg["auth"]["master_users"] = [MASTER]
    cfg["auth"]["master_nets"] = ["127.0.0.0/8", "::1"]
    cfg["submit"] = {"local_domains": ["example.test"]}
    return cfg


def port_of(cfg, section, name=None):
    for r in cfg[section]:
        if name is None or r["name"] == name:
            return int(r["listen"].rsplit(":", 1)[1])
    raise KeyError(name)


def gate_cfg(directory, certs, store):
    """ringgate with the six front-end listeners in front of store."""
    def lst(name, tls):
        return {"name": name, "listen": "127.0.0.1:%d" % fresh_port(),
                "tls": tls, "starttls": not tls}
    with open(os.path.join(directory, "master.pw"), "w") as f:
        f.write(MASTER_PW + "\n")
    rs.write_passwd(os.path.join(directory, "gate.passwd"),
                    {USER: PASSWORD, BOB: BOB_PW})
    cfg = h.base_config(certs, [], fresh_port())
    cfg["limits"].update({"login_fail_delay": "200ms", "login_fails": 3,
                          "login_timeout": "30s"})
    cfg["imap"] = [lst("imap", False), lst("imaps", True)]
    cfg["pop3"] = [lst("pop3", False), lst("pop3s", True)]
    cfg["submission"] = [lst("submission", False), lst("submissions", True)]
    cfg["auth"] = {"passwd_file": os.path.join(directory, "gate.passwd"),
                   "default_scheme": "SCRAM-SHA-256"}
    cfg["backends"] = [{
        "name": "store1",
        "imap": "127.0.0.1:%d" % port_of(store, "imap"),
        "pop3": "127.0.0.1:%d" % port_of(store, "pop3"),
        "submission": "127.0.0.1:%d" % port_of(store, "submission")}]
    cfg["backend_login"] = {
        "master_user": MASTER,
        "master_password_file": os.path.join(directory, "master.pw"),
        "timeout": "5s"}
    return cfg


def start_proc(proc, testcase=None):
    """proc.start(), again with new listen ports when one of its probed
    ports was taken meanwhile (by another test's outgoing connection,
    say). Read ports from proc.cfg afterwards."""
    for attempt in range(4):
        try:
            proc.start()
        except AssertionError as e:
            proc.stop()
            if "Address already in use" not in str(e) or attempt == 3:
                raise
            for sec in ("imap", "pop3", "submission"):
                proc.cfg[sec] = [dict(l, listen="127.0.0.1:%d" %
                                      fresh_port())
                                 for l in proc.cfg.get(sec) or []]
            proc.cfg["admin"] = {"listen": "127.0.0.1:%d" % fresh_port()}
            continue
        if testcase is not None:
            testcase.addCleanup(proc.stop_checked)
        return proc


def start_pair(directory, cert, key, testcase=None):
    """A ringstore and a ringgate in front of it. The free ports are only
    probably free (other tests run on this box): a start that lost its
    port to someone else is tried again with new ones."""
    for attempt in range(3):
        store = rs.Ringstore(directory, store_cfg(directory, [(cert, key)]))
        gate = None
        try:
            store.start()
            gate = h.Ringgate(directory, gate_cfg(directory, [(cert, key)],
                                                  store.cfg))
            gate.start()
        except AssertionError as e:
            for p in (gate, store):
                if p is not None:
                    p.stop()
            if "Address already in use" not in str(e) or attempt == 2:
                raise
            continue
        if testcase is not None:
            testcase.addCleanup(store.stop_checked)
            testcase.addCleanup(gate.stop_checked)
        return store, gate


def message(frm, to, subject, body="Hello through ringgate.\r\n"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" %
            (frm, to, subject, body)).encode()


class GateCase(unittest.TestCase):
    """A ringstore and a ringgate in front of it, per class."""

    @classmethod
    def setUpClass(cls):
        cls.dir = cls._mkdir()
        rs.write_passwd(os.path.join(cls.dir, "passwd"),
                        {USER: PASSWORD, BOB: BOB_PW, MASTER: MASTER_PW})
        cls.cert, key = h.make_cert(cls.dir, "ec", stem="server")
        cls.store, cls.gate = start_pair(cls.dir, cls.cert, key)

    @classmethod
    def _mkdir(cls):
        import tempfile
        d = tempfile.mkdtemp(prefix="rg-gate-")
        cls._tmp = d
        return d

    @classmethod
    def tearDownClass(cls):
        errors = []
        for p in (cls.gate, cls.store):
            try:
                p.stop_checked()
            except AssertionError as e:
                errors.append(str(e))
        if getattr(cls, "_tmp", None):
            shutil.rmtree(cls._tmp, ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))

    # -- helpers
    def port(self, name):
        for sec in ("imap", "pop3", "submission"):
            for r in self.gate.cfg[sec]:
                if r["name"] == name:
                    return int(r["listen"].rsplit(":", 1)[1])
        raise KeyError(name)

    def ctx(self):
        return h.client_context(cafiles=[self.cert])

    def imap(self, listener="imaps", user=USER, password=PASSWORD):
        if listener == "imaps":
            m = imaplib.IMAP4_SSL("127.0.0.1", self.port(listener),
                                  ssl_context=self.ctx(), timeout=20)
        else:
            m = imaplib.IMAP4("127.0.0.1", self.port(listener), timeout=20)
            m.starttls(ssl_context=self.ctx())
        self.addCleanup(rs.logout_quietly, m)
        if user is not None:
            m.login(user, password)
        return m

    def pop(self, listener="pop3s", user=USER, password=PASSWORD):
        if listener == "pop3s":
            p = poplib.POP3_SSL("127.0.0.1", self.port(listener),
                                context=self.ctx(), timeout=20)
        else:
            p = poplib.POP3("127.0.0.1", self.port(listener), timeout=20)
            p.stls(context=self.ctx())
        self.addCleanup(self.quietly, p.quit)
        if user is not None:
            p.user(user)
            p.pass_(password)
        return p

    def smtp(self, listener="submissions", user=USER, password=PASSWORD):
        if listener == "submissions":
            s = smtplib.SMTP_SSL("127.0.0.1", self.port(listener),
                                 context=self.ctx(), timeout=20)
            s.ehlo("client.example")
        else:
            s = smtplib.SMTP("127.0.0.1", self.port(listener), timeout=20)
            s.ehlo("client.example")
            s.starttls(context=self.ctx())
            s.ehlo("client.example")
        self.addCleanup(self.quietly, s.quit)
        if user is not None:
            s.login(user, password)
        return s

    @staticmethod
    def quietly(fn):
        try:
            fn()
        except Exception:
            pass

    def raw(self, listener):
        s = socket.create_connection(("127.0.0.1", self.port(listener)),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.addCleanup(f.close)
        return s, f

    def count_in_inbox(self, subject, user=BOB, password=BOB_PW):
        m = self.imap("imaps", user, password)
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", '"%s"' % subject)
        self.assertEqual(typ, "OK")
        return len(data[0].split())


class TestFront(GateCase):

    # ---------------------------------------------------------------- IMAP
    def test_imap_starttls_and_implicit_login_select_fetch(self):
        for listener in ("imap", "imaps"):
            m = self.imap(listener)
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
            typ, data = m.fetch("1:*", "(FLAGS)") if int(data[0]) else \
                m.noop()
            self.assertEqual(typ, "OK", data)
            self.assertEqual(m.logout()[0], "BYE")

    def test_imap_tagged_ok_carries_backend_capability(self):
        s, f = self.raw("imap")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"a STARTTLS\r\n")
        self.assertTrue(rs.read_tagged(self, f, b"a")[-1].startswith(
            b"a OK"))
        t = self.ctx().wrap_socket(s, server_hostname="localhost")
        self.addCleanup(t.close)
        tf = t.makefile("rb")
        t.sendall(b"b LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        ok = rs.read_tagged(self, tf, b"b")[-1]
        self.assertTrue(ok.startswith(b"b OK [CAPABILITY IMAP4rev1"), ok)
        self.assertIn(b"IDLE", ok)
        self.assertNotIn(b"LOGINDISABLED", ok)
        t.sendall(b"c LOGOUT\r\n")
        lines = rs.read_tagged(self, tf, b"c")
        self.assertTrue(lines[0].startswith(b"* BYE"), lines)

    def test_imap_login_before_tls_refused(self):
        s, f = self.raw("imap")
        greeting = f.readline()
        self.assertIn(b"LOGINDISABLED", greeting)
        self.assertNotIn(b"AUTH=", greeting)
        s.sendall(b"a LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.assertTrue(rs.read_tagged(self, f, b"a")[-1].startswith(
            b"a NO"))
        s.sendall(b"b AUTHENTICATE PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AHg=\r\n")
        self.assertTrue(rs.read_tagged(self, f, b"b")[-1].startswith(
            b"b NO"))

    def test_unknown_user_and_wrong_password_same_answer(self):
        answers = []
        for user, pw in ((USER, "wrong"), ("nobody@example.test", "x")):
            m = self.imap("imaps", user=None)
            with self.assertRaises(imaplib.IMAP4.error) as cm:
                m.login(user, pw)
            answers.append(str(cm.exception))
        self.assertEqual(answers[0], answers[1])
        pops = []
        for user, pw in ((USER, "wrong"), ("nobody@example.test", "x")):
            p = self.pop("pop3s", user=None)
            p.user(user)
            with self.assertRaises(poplib.error_proto) as cm:
                p.pass_(pw)
            pops.append(str(cm.exception))
        self.assertEqual(pops[0], pops[1])

    def test_imap_idle_sees_submitted_message(self):
        m = self.imap("imaps", BOB, BOB_PW)
        m.select("INBOX")
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+"))
        s = self.smtp("submissions")
        s.sendmail(USER, [BOB], message(USER, BOB, "idle-wakeup"))
        line = m.readline()
        self.assertRegex(line, rb"^\* \d+ EXISTS")
        m.send(b"DONE\r\n")
        while True:
            line = m.readline()
            if line.startswith(tag):
                break
        self.assertIn(b"OK", line)

    # ---------------------------------------------------------------- POP3
    def test_pop3_stls_and_pop3s(self):
        for listener in ("pop3", "pop3s"):
            p = self.pop(listener)
            count, size = p.stat()
            self.assertGreaterEqual(count, 0)
            self.assertTrue(p.quit().startswith(b"+OK"))

    def test_pop3_user_before_stls_refused(self):
        s, f = self.raw("pop3")
        self.assertTrue(f.readline().startswith(b"+OK"))
        s.sendall(b"USER %s\r\n" % USER.encode())
        self.assertTrue(f.readline().startswith(b"-ERR"))
        s.sendall(b"AUTH PLAIN\r\n")
        self.assertTrue(f.readline().startswith(b"-ERR"))

    # ---------------------------------------------------------- submission
    def test_submit_then_read_over_imap_and_pop3(self):
        for listener in ("submission", "submissions"):
            subj = "round-trip-%s" % listener
            s = self.smtp(listener)
            s.sendmail(USER, [BOB], message(USER, BOB, subj))
            self.assertEqual(self.count_in_inbox(subj), 1)
        p = self.pop("pop3s", BOB, BOB_PW)
        n = p.stat()[0]
        found = 0
        for i in range(1, n + 1):
            body = b"\n".join(p.retr(i)[1])
            found += b"round-trip-submission" in body
        self.assertGreaterEqual(found, 2)

    def test_smtp_auth_before_tls_and_mail_before_auth(self):
        s, f = self.raw("submission")
        self.assertTrue(f.readline().startswith(b"220"))
        s.sendall(b"EHLO client.example\r\n")
        ehlo = []
        while True:
            line = f.readline()
            ehlo.append(line)
            if line[3:4] == b" ":
                break
        self.assertFalse(any(b"AUTH" in l for l in ehlo), ehlo)
        self.assertTrue(any(b"STARTTLS" in l for l in ehlo), ehlo)
        s.sendall(b"AUTH PLAIN AGRlbW9AZXhhbXBsZS50ZXN0AHg=\r\n")
        self.assertTrue(f.readline().startswith(b"5"))
        s.sendall(b"MAIL FROM:<%s>\r\n" % USER.encode())
        self.assertTrue(f.readline().startswith(b"530 5.7.0"))
        # after TLS still no MAIL before AUTH
        t = self.smtp("submissions", user=None)
        code, msg = t.docmd("MAIL", "FROM:<%s>" % USER)
        self.assertEqual(code, 530, msg)

    def test_vrfy_same_answer_for_user_and_stranger(self):
        t = self.smtp("submissions", user=None)
        a = t.docmd("VRFY", BOB)
        b = t.docmd("VRFY", "nobody@example.test")
        self.assertEqual(a, b)
        self.assertEqual(a[0], 252)

    def test_pipelined_plaintext_after_starttls_is_dropped(self):
        cases = {
            "imap": (b"a STARTTLS\r\nb LOGIN %s %s\r\n" %
                     (USER.encode(), PASSWORD.encode()), b"a OK", b"* OK",
                     b"x NOOP\r\n", b"x OK"),
            "pop3": (b"STLS\r\nUSER %s\r\n" % USER.encode(), b"+OK", b"+OK",
                     b"PASS %s\r\n" % PASSWORD.encode(), b"-ERR"),
            "submission": (b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n",
                           b"220 ", b"220", b"NOOP\r\n", b"250"),
        }
        for listener, (send, ok, greet, probe, want) in cases.items():
            with self.subTest(listener=listener):
                s, f = self.raw(listener)
                self.assertTrue(f.readline().startswith(greet))
                s.sendall(send)
                while True:
                    line = f.readline()
                    self.assertTrue(line, "closed")
                    if line.startswith(ok):
                        break
                t = self.ctx().wrap_socket(s, server_hostname="localhost")
                self.addCleanup(t.close)
                tf = t.makefile("rb")
                # the first answer over TLS is to the probe: nothing of
                # the pipelined plaintext was executed
                t.sendall(probe)
                line = tf.readline()
                self.assertTrue(line.startswith(want), (listener, line))

    # ------------------------------------------------------ other clients
    @unittest.skipUnless(CURL or h.IN_CI, "curl not installed")
    def test_curl_imaps_pop3s_smtps(self):
        base = ["curl", "-sS", "--cacert", self.cert, "-u",
                "%s:%s" % (BOB, BOB_PW), "--max-time", "20"]
        out = h.run(base + ["imaps://localhost:%d/INBOX?ALL" %
                            self.port("imaps")]).stdout
        self.assertIn("SEARCH", out)
        path = os.path.join(self.dir, "curl-mail.txt")
        with open(path, "wb") as f:
            f.write(message(BOB, BOB, "via-curl"))
        h.run(base + ["smtps://localhost:%d" % self.port("submissions"),
                      "--mail-from", BOB, "--mail-rcpt", BOB,
                      "--upload-file", path])
        self.assertEqual(self.count_in_inbox("via-curl"), 1)
        out = h.run(base + ["pop3s://localhost:%d/" %
                            self.port("pop3s")]).stdout
        self.assertRegex(out, r"^\d+ \d+")

    @unittest.skipUnless(OPENSSL or h.IN_CI, "openssl not installed")
    def test_openssl_s_client_starttls(self):
        for proto, listener, cmds, want in (
                ("imap", "imap", b"a LOGIN %s %s\r\nb LOGOUT\r\n" %
                 (BOB.encode(), BOB_PW.encode()), b"a OK [CAPABILITY"),
                ("pop3", "pop3", b"USER %s\r\nPASS %s\r\nQUIT\r\n" %
                 (BOB.encode(), BOB_PW.encode()), b"+OK Logged in."),
                ("smtp", "submission", b"EHLO x\r\nQUIT\r\n", b"250")):
            with self.subTest(proto=proto):
                p = subprocess.run(
                    ["openssl", "s_client", "-quiet", "-starttls", proto,
                     "-connect", "127.0.0.1:%d" % self.port(listener),
                     "-CAfile", self.cert, "-verify_return_error"],
                    input=cmds, capture_output=True, timeout=30)
                self.assertIn(want, p.stdout, p.stdout + p.stderr)

    @unittest.skipUnless(shutil.which("gsasl") or h.IN_CI, "gsasl not installed")
    def test_gsasl_scram_sha_256_plus_at_ringgate(self):
        """SCRAM-SHA-256-PLUS bound to ringgate's own TLS (tls-exporter),
        then the store behind it through the master login."""
        p = subprocess.run(
            ["gsasl", "--imap", "-d", "--quiet", "-m", "SCRAM-SHA-256-PLUS",
             "-a", BOB, "-p", BOB_PW, "--starttls",
             "--x509-ca-file=" + self.cert, "--hostname=localhost",
             "--connect", "127.0.0.1:%d" % self.port("imap")],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        first = re.search(rb"AUTHENTICATE SCRAM-SHA-256-PLUS\r?\n\+ ?\r?\n"
                          rb"([A-Za-z0-9+/=]+)", out)
        self.assertIsNotNone(first, out)
        self.assertTrue(base64.b64decode(first.group(1)).startswith(
            b"p=tls-exporter,"))
        self.assertRegex(out, rb"OK \[CAPABILITY IMAP4rev1")

    @unittest.skipUnless(SWAKS or h.IN_CI, "swaks not installed")
    def test_swaks_tls_auth(self):
        p = subprocess.run(
            [SWAKS, "--server", "127.0.0.1:%d" % self.port("submission"),
             "--tls", "--tls-ca-path", self.cert, "--auth", "PLAIN",
             "--auth-user", BOB, "--auth-password", BOB_PW,
             "--from", BOB, "--to", BOB, "--header", "Subject: via-swaks",
             "--body", "hello"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(b"235 2.7.0", p.stdout)
        self.assertEqual(self.count_in_inbox("via-swaks"), 1)

    def test_sighup_reloads_and_keeps_serving(self):
        m = self.imap("imaps", BOB, BOB_PW)
        n = self.gate.stderr().count("event=reload.done")
        self.gate.reload()
        h.wait_for(lambda: self.gate.stderr().count("event=reload.done") > n,
                   what="reload.done")
        self.assertEqual(m.noop()[0], "OK")  # the old session lives
        for listener in ("imap", "imaps"):
            self.assertEqual(self.imap(listener).noop()[0], "OK")

    def test_submission_over_xclient_names_the_client(self):
        """backend_login.xclient: ringgate tells the store the client's
        address and EHLO name (XCLIENT from its trusted loopback) instead
        of a master AUTH; the Received header says who really sent."""
        d = os.path.join(self.dir, "xclient")
        os.mkdir(d)
        cfg = dict(self.gate.cfg)
        cfg["backend_login"] = dict(cfg["backend_login"], xclient=True)
        cfg["admin"] = {"listen": "127.0.0.1:%d" % fresh_port()}
        for sec in ("imap", "pop3"):
            cfg[sec] = []
        cfg["submission"] = [dict(l, listen="127.0.0.1:%d" % fresh_port())
                             for l in cfg["submission"]]
        g = start_proc(h.Ringgate(d, cfg), self)
        s = smtplib.SMTP_SSL("127.0.0.1", port_of(cfg, "submission",
                                                  "submissions"),
                             context=self.ctx(), timeout=20)
        self.addCleanup(self.quietly, s.quit)
        s.ehlo("xclient-client.example")
        s.login(BOB, BOB_PW)
        s.sendmail(BOB, [BOB], message(BOB, BOB, "via-xclient"))
        m = self.imap("imaps", BOB, BOB_PW)
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", '"via-xclient"')
        typ, data = m.fetch(data[0].split()[-1], "(BODY.PEEK[HEADER])")
        self.assertIn(b"xclient-client.example", data[0][1])
        g.assert_alive()

    @unittest.skipUnless(shutil.which("mbsync") or h.IN_CI, "mbsync not installed")
    def test_mbsync_both_ways(self):
        """mbsync (isync) through ringgate: the INBOX comes down, a local
        message in a new folder goes up and is seen over IMAP."""
        s = self.smtp("submissions", BOB, BOB_PW)
        s.sendmail(BOB, [BOB], message(BOB, BOB, "for-mbsync"))
        for listener, ssl_type in (("imaps", "IMAPS"), ("imap", "STARTTLS")):
            with self.subTest(listener=listener):
                d = os.path.join(self.dir, "mbsync-" + listener)
                local = os.path.join(d, "mail")
                os.makedirs(local)
                rc = os.path.join(d, "mbsyncrc")
                with open(rc, "w") as f:
                    f.write("\n".join([
                        "IMAPAccount gate", "Host localhost",
                        "Port %d" % self.port(listener), "User " + BOB,
                        "Pass " + BOB_PW, "SSLType " + ssl_type,
                        "CertificateFile " + self.cert, "Timeout 20", "",
                        "IMAPStore remote", "Account gate", "",
                        "MaildirStore near", "Path %s/" % local,
                        "Inbox %s/INBOX" % local, "SubFolders Verbatim", "",
                        "Channel both", "Far :remote:", "Near :near:",
                        "Patterns *", "Create Both", "SyncState *", ""]))
                up = os.path.join(local, "Up-" + listener)
                for sub in ("cur", "new", "tmp"):
                    os.makedirs(os.path.join(up, sub))
                with open(os.path.join(up, "new", "1.local"), "wb") as f:
                    f.write(message(BOB, BOB, "from-mbsync-" + listener))
                p = subprocess.run(["mbsync", "-a", "-c", rc],
                                   capture_output=True, text=True,
                                   timeout=120, cwd=d,
                                   env=dict(os.environ, HOME=d))
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                down = []
                for sub in ("cur", "new"):
                    dd = os.path.join(local, "INBOX", sub)
                    for name in os.listdir(dd):
                        with open(os.path.join(dd, name), "rb") as f:
                            down.append(f.read())
                self.assertTrue(any(b"for-mbsync" in m for m in down))
                m = self.imap("imaps", BOB, BOB_PW)
                typ, data = m.select('"Up-%s"' % listener)
                self.assertEqual(typ, "OK", data)
                self.assertEqual(int(data[0]), 1)

    # ----------------------------------------------------- audit, metrics
    def test_audit_line_and_metrics(self):
        m = self.imap("imaps", BOB, BOB_PW)
        m.select("INBOX")
        m.logout()

        def logged():
            return any("gate.session" in l and "proto=imap" in l and
                       'user=%s' % BOB in l
                       for l in self.gate.stderr().splitlines())
        try:
            h.wait_for(logged, what="the audit line")
        except AssertionError:
            raise AssertionError(self.gate.stderr()[-3000:])
        line = [l for l in self.gate.stderr().splitlines()
                if "gate.session" in l and 'user=%s' % BOB in l][-1]
        for key in ("client=127.0.0.1:", "tls=TLSv1.3", "cipher=",
                    "sni=", "mech=IMAP-LOGIN", "backend=store1",
                    "client_to_backend=", "backend_to_client=",
                    "duration="):
            self.assertIn(key, line)
        self.assertRegex(line, r"end=(logout|client_eof)")
        self.assertGreaterEqual(self.gate.metric(
            "ringgate_backend_logins_total", proto="imap", result="ok"), 1)
        self.assertGreaterEqual(self.gate.metric(
            "ringgate_imap_logins_total", result="ok"), 1)
        self.assertGreater(self.gate.metric(
            "ringgate_session_bytes_total", proto="imap",
            direction="backend_to_client"), 0)


    def test_submission_messages_counted(self):
        """The submission relay counts messages by the store's verdict:
        one accepted with a body line "QUIT" and a dot-stuffed line, one
        refused at end of data (a From: that is not the user's), then a
        QUIT that ends the session as a logout, not a lost back end."""
        def count(result):
            return self.gate.metric("ringgate_submission_messages_total",
                                    result=result) or 0
        acc, ref = count("accepted"), count("refused")
        body = "first line\r\nQUIT\r\n.dot-stuffed\r\n"
        good = message(USER, BOB, "metered", body)
        s = self.smtp("submissions")
        s.sendmail(USER, [BOB], good)
        with self.assertRaises(smtplib.SMTPDataError) as e:
            s.sendmail(USER, [BOB], message("someone@else.example", BOB,
                                            "not mine"))
        self.assertEqual(e.exception.smtp_code // 100, 5)
        s.quit()

        def logged():
            return [l for l in self.gate.stderr().splitlines()
                    if "gate.session" in l and "proto=submission" in l and
                    " messages_refused=1 " in l]
        h.wait_for(logged, what="the submission audit line")
        line = logged()[-1]
        self.assertIn(" messages=1 ", line)
        # the bytes as sent: dot-stuffing doubles the leading dot
        self.assertIn(" message_bytes=%d " % (len(good) + 1), line)
        # the client's QUIT was seen as a command: whichever side hangs
        # up first after the 221, the back end was not lost
        self.assertRegex(line, r"end=(logout|client_eof)")
        self.assertEqual(count("accepted"), acc + 1)
        self.assertEqual(count("refused"), ref + 1)
        self.assertGreaterEqual(self.gate.metric(
            "ringgate_submission_message_bytes_total"), len(good) + 1)


class TestBackendDown(GateCase):
    """The back end goes away: each test kills or stops the class's
    ringstore, so each starts its own pair."""

    @classmethod
    def setUpClass(cls):
        """A fresh pair per test instead (setUp)."""

    @classmethod
    def tearDownClass(cls):
        pass

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: PASSWORD, BOB: BOB_PW, MASTER: MASTER_PW})
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        self.store, self.gate = start_pair(self.dir, self.cert, key, self)

    def tls(self, listener):
        s = socket.create_connection(("127.0.0.1", self.port(listener)),
                                     timeout=h.IO_TIMEOUT)
        t = self.ctx().wrap_socket(s, server_hostname="localhost")
        self.addCleanup(t.close)
        return t, t.makefile("rb")

    def logged_in(self):
        """An IMAP, a POP3 and a submission session through ringgate,
        logged in: (socket, reader) each."""
        i, fi = self.tls("imaps")
        self.assertTrue(fi.readline().startswith(b"* OK"))
        i.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" %
                  (USER.encode(), PASSWORD.encode()))
        self.assertTrue(rs.read_tagged(self, fi, b"b")[-1].startswith(
            b"b OK"))
        p, fp = self.tls("pop3s")
        self.assertTrue(fp.readline().startswith(b"+OK"))
        p.sendall(b"USER %s\r\nPASS %s\r\n" % (USER.encode(),
                                                PASSWORD.encode()))
        self.assertTrue(fp.readline().startswith(b"+OK"))
        self.assertEqual(fp.readline(), b"+OK Logged in.\r\n")
        m, fm = self.tls("submissions")
        self.assertTrue(fm.readline().startswith(b"220"))
        m.sendall(b"EHLO x\r\n")
        while fm.readline()[3:4] != b" ":
            pass
        m.sendall(b"AUTH PLAIN %s\r\n" % base64.b64encode(
            b"\0" + USER.encode() + b"\0" + PASSWORD.encode()))
        self.assertTrue(fm.readline().startswith(b"235 2.7.0"))
        return (i, fi), (p, fp), (m, fm)

    def kill_store(self):
        self.store.proc.kill()
        self.store.killed = True
        self.store.proc.wait(10)

    def test_backend_killed_mid_session_gets_goodbye(self):
        (i, fi), (p, fp), (m, fm) = self.logged_in()
        self.kill_store()
        self.assertTrue(fi.readline().startswith(b"* BYE [UNAVAILABLE]"))
        self.assertEqual(fi.readline(), b"")
        self.assertTrue(fp.readline().startswith(b"-ERR [SYS/TEMP]"))
        self.assertTrue(fm.readline().startswith(b"421 4.4.2"))
        self.gate.assert_alive()
        self.assertEqual(self.gate.metric("ringgate_backend_lost_total",
                                          proto="imap"), 1)
        # ringgate keeps serving: a new login hears the temporary error
        self.check_temporary_error()

    def test_backend_down_temporary_error_at_once(self):
        self.kill_store()
        self.check_temporary_error()
        self.assertGreaterEqual(self.gate.metric(
            "ringgate_backend_logins_total", proto="imap", result="temp"),
            1)

    def check_temporary_error(self):
        addr = "127.0.0.1:%d" % port_of(self.store.cfg, "imap")
        i, fi = self.tls("imaps")
        self.assertTrue(fi.readline().startswith(b"* OK"))
        i.sendall(b"a LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        line = rs.read_tagged(self, fi, b"a")[-1]
        self.assertTrue(line.startswith(b"a NO [UNAVAILABLE]"), line)
        self.assertNotIn(addr.encode(), line)
        p, fp = self.tls("pop3s")
        self.assertTrue(fp.readline().startswith(b"+OK"))
        p.sendall(b"USER %s\r\nPASS %s\r\n" % (USER.encode(),
                                                PASSWORD.encode()))
        fp.readline()
        self.assertTrue(fp.readline().startswith(b"-ERR [SYS/TEMP]"))
        m, fm = self.tls("submissions")
        self.assertTrue(fm.readline().startswith(b"220"))
        m.sendall(b"EHLO x\r\nAUTH PLAIN %s\r\n" % base64.b64encode(
            b"\0" + USER.encode() + b"\0" + PASSWORD.encode()))
        while fm.readline()[3:4] != b" ":
            pass
        self.assertTrue(fm.readline().startswith(b"454 4.7.0"))

class TestTwoStores(unittest.TestCase):
    """Two ringstores behind one ringgate: users spread by hashing, host=
    wins, the spread survives a ringgate restart, one store killed gives
    its users the temporary error at once while the others keep working,
    and its users come back with it."""

    USERS = ["u%d@example.test" % i for i in range(10)]

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        users = {u: "pw-" + u for u in self.USERS}
        self.stores = []
        for name in ("store1", "store2"):
            d = os.path.join(self.dir, name)
            os.mkdir(d)
            rs.write_passwd(os.path.join(d, "passwd"),
                            dict(users, **{MASTER: MASTER_PW}))
            st = start_proc(rs.Ringstore(d, store_cfg(d, [(self.cert, key)])),
                            self)
            self.stores.append(st)
        cfg = gate_cfg(self.dir, [(self.cert, key)], self.stores[0].cfg)
        cfg["backends"] = [
            {"name": "store%d" % (i + 1),
             "imap": "127.0.0.1:%d" % port_of(st.cfg, "imap"),
             "pop3": "127.0.0.1:%d" % port_of(st.cfg, "pop3"),
             "submission": "127.0.0.1:%d" % port_of(st.cfg, "submission")}
            for i, st in enumerate(self.stores)]
        cfg["health"] = {"interval": "200ms", "timeout": "500ms",
                         "fall": 1, "rise": 1}
        # u0 is pinned to store2 by its entry's host=
        with open(os.path.join(self.dir, "gate.passwd"), "w") as f:
            for u in self.USERS:
                f.write("%s:%s::::::%s\n" % (
                    u, rs.scram_hash("pw-" + u),
                    "host=store2" if u == "u0@example.test" else ""))
        self.gate = start_proc(h.Ringgate(self.dir, cfg), self)

    def login(self, user):
        """IMAPS login as user: "ok" or the NO answer's text."""
        m = imaplib.IMAP4_SSL(
            "127.0.0.1", int(self.gate.cfg["imap"][1]["listen"].rsplit(
                ":", 1)[1]),
            ssl_context=h.client_context(cafiles=[self.cert]), timeout=20)
        try:
            m.login(user, "pw-" + user)
        except imaplib.IMAP4.error as e:
            rs.logout_quietly(m)
            return str(e)
        m.select("INBOX")
        m.logout()
        return "ok"

    def homes(self):
        """user -> the store whose mail root has the user's Maildir."""
        out = {}
        for i, st in enumerate(self.stores):
            root = os.path.join(st.dir, "mail", "example.test")
            for local in (os.listdir(root) if os.path.isdir(root) else []):
                out.setdefault(local + "@example.test", set()).add(i)
        return out

    def test_spread_host_restart_kill_and_return(self):
        for u in self.USERS:
            self.assertEqual(self.login(u), "ok", u)
        homes = self.homes()
        for u in self.USERS:
            self.assertEqual(len(homes[u]), 1, (u, homes[u]))
        self.assertEqual(homes["u0@example.test"], {1})
        on = [[u for u in self.USERS if homes[u] == {i}] for i in (0, 1)]
        self.assertTrue(on[0] and on[1], on)
        # the same homes after a ringgate restart
        self.gate.stop_checked()
        self.gate.start()
        for u in self.USERS:
            self.assertEqual(self.login(u), "ok", u)
        self.assertEqual(self.homes(), homes)
        # store1 killed: its users get [UNAVAILABLE], the others go on
        self.stores[0].proc.kill()
        self.stores[0].killed = True
        self.stores[0].proc.wait(10)
        for u in on[0]:
            self.assertIn("UNAVAILABLE", self.login(u))
        for u in on[1]:
            self.assertEqual(self.login(u), "ok", u)
        # and back: its users return once the health check sees it
        self.stores[0].stop()  # closes its log file
        self.stores[0].killed = False
        self.stores[0].start(None)
        h.wait_for(lambda: self.login(on[0][0]) == "ok", timeout=15,
                   interval=0.2, what="store1's users back")
        for u in on[0]:
            self.assertEqual(self.login(u), "ok", u)
        self.assertEqual(self.homes(), homes)


class TestConfigCheck(unittest.TestCase):
    """`ringgate -t` on the front ends' config: a good one passes, each
    mistake names FILE:LINE."""

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
        self.path = os.path.join(self.dir, "ringgate.conf")
        store = {"imap": [{"name": "imap", "listen": "127.0.0.1:1143"}],
                 "pop3": [{"name": "pop3", "listen": "127.0.0.1:1110"}],
                 "submission": [{"name": "s", "listen": "127.0.0.1:1587"}]}
        self.cfg = gate_cfg(self.dir, [(self.cert, self.key)], store)

    def check(self, cfg):
        text = h.config_text(cfg)
        with open(self.path, "w") as f:
            f.write(text)
        p = h.run([h.RINGGATE, "-t", "-c", self.path], check=False)
        return text, p.returncode, p.stdout + p.stderr

    def assert_error_at(self, cfg, needle, *words):
        text, code, out = self.check(cfg)
        self.assertEqual(code, 1, out)
        if needle is not None:  # the key's line, or its group's "{"
            line = h.line_of(text, needle)
            self.assertTrue("%s:%d:" % (self.path, line) in out or
                            "%s:%d:" % (self.path, line - 1) in out,
                            (line, out))
        for w in words:
            self.assertIn(w, out)

    def test_good(self):
        _, code, out = self.check(self.cfg)
        self.assertEqual(code, 0, out)
        self.assertIn("test is successful", out)

    def test_mistakes(self):
        cfg = dict(self.cfg, imap=[{"name": "imaps", "tls": True,
                                    "listen": "127.0.0.1:1"}])
        cfg["tls"] = {"certificates": []}
        self.assert_error_at(cfg, 'name = "imaps"', "tls.certificates")
        cfg = dict(self.cfg, backends=[dict(self.cfg["backends"][0],
                                            tls="starttls")])
        self.assert_error_at(cfg, 'name = "store1"', "sni")
        cfg = dict(self.cfg, backend_login={
            "master_user": MASTER,
            "master_password_file": os.path.join(self.dir, "missing")})
        self.assert_error_at(cfg, "backend_login = {", "missing")
        cfg = dict(self.cfg, backend_login={"master_user": MASTER,
                                            "master_pasword_file": "x"})
        self.assert_error_at(cfg, "master_pasword_file", "did you mean")
        cfg = dict(self.cfg)
        del cfg["backends"]
        self.assert_error_at(cfg, None, "backends")
        cfg = dict(self.cfg, pop3=[{"name": "pop3",
                                    "listen": self.cfg["imap"][0]["listen"]}])
        self.assert_error_at(cfg, 'name = "pop3"', "repeats")
        cfg = dict(self.cfg, imap=[dict(self.cfg["imap"][0],
                                        proxy_protocol=True)])
        self.assert_error_at(cfg, 'name = "imap"', "proxy_nets")
        cfg = dict(self.cfg, auth={"default_scheme": "SCRAM-SHA-256"})
        self.assert_error_at(cfg, None, "passwd_file")


class TestLimits(GateCase):
    """What the pre-login limits and the relay's back-pressure cost on
    ringgate's listeners."""

    def test_proxy_header_from_untrusted_address_refused(self):
        # a listener that takes PROXY headers only from 10.9.9.0/24
        path = os.path.join(self.dir, "proxy.conf")
        cfg = dict(self.gate.cfg)
        cfg["imap"] = [{"name": "lb", "listen": "127.0.0.1:%d" %
                        fresh_port(), "proxy_protocol": True,
                        "proxy_nets": ["10.9.9.0/24"]}]
        cfg["pop3"] = []
        cfg["submission"] = []
        cfg["admin"] = {"listen": "127.0.0.1:%d" % fresh_port()}
        d = os.path.join(self.dir, "lb")
        os.mkdir(d)
        g = start_proc(h.Ringgate(d, cfg), self)
        s = socket.create_connection(("127.0.0.1", port_of(cfg, "imap")),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 143\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")  # closed without a greeting
        self.assertGreaterEqual(g.metric("ringgate_connections_closed_total",
                                         listener="lb", reason="proxy"), 1)
        g.assert_alive()

    def test_silent_clients_cut_at_login_timeout(self):
        d = os.path.join(self.dir, "to")
        os.mkdir(d)
        cfg = dict(self.gate.cfg)
        cfg["limits"] = dict(cfg["limits"], login_timeout="1s",
                             handshake_timeout="1s")
        cfg["admin"] = {"listen": "127.0.0.1:%d" % fresh_port()}
        for sec in ("imap", "pop3", "submission"):
            cfg[sec] = [dict(l, listen="127.0.0.1:%d" % fresh_port())
                        for l in cfg[sec]]
        g = start_proc(h.Ringgate(d, cfg), self)
        socks = []
        for sec in ("imap", "pop3", "submission"):
            for l in cfg[sec]:
                s = socket.create_connection(
                    ("127.0.0.1", int(l["listen"].rsplit(":", 1)[1])),
                    timeout=h.IO_TIMEOUT)
                self.addCleanup(s.close)
                socks.append(s)
        for s in socks:  # every one is closed by ringgate: EOF
            while True:
                try:
                    if not s.recv(4096):
                        break
                except ConnectionResetError:
                    break
        g.assert_alive()

    @unittest.skipIf(h.is_asan_build(), "ASan's quarantine keeps freed "
                     "memory resident")
    def test_memory_bounded_with_50_clients_that_do_not_read(self):
        """4 x 1 MiB messages in bob's INBOX; 50 sessions each FETCH all
        of it and never read. What ringgate may hold (docs/proxy.md,
        "Memory"): the workers' shared receive buffers, and per session
        its two output queues (each up to output_buffer plus one 16 KiB
        read, in buffers that grow by doubling) and TLS state; not the
        200 MiB asked for (before bounded reads: ~145 MiB here)."""
        s = self.smtp("submissions", BOB, BOB_PW)
        big = message(BOB, BOB, "big", body=("x" * 998 + "\r\n") * 1050)
        for _ in range(4):
            s.sendmail(BOB, [BOB], big)
        before = self.gate.rss_kib()
        socks = []
        for _ in range(50):
            t = self.ctx().wrap_socket(socket.create_connection(
                ("127.0.0.1", self.port("imaps")), timeout=h.IO_TIMEOUT),
                server_hostname="localhost")
            self.addCleanup(t.close)
            f = t.makefile("rb")
            f.readline()
            t.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" %
                      (BOB.encode(), BOB_PW.encode()))
            rs.read_tagged(self, f, b"b")
            t.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            t.sendall(b"c FETCH 1:* BODY.PEEK[]\r\n")
            socks.append(t)
        # wait until every session is stuck: bytes relayed stop growing
        last = [-1]

        def settled():
            now = self.gate.metric("ringgate_session_bytes_total",
                                   proto="imap",
                                   direction="backend_to_client")
            done, last[0] = now == last[0], now
            return done
        h.wait_for(settled, timeout=30, interval=0.5, what="stalled")
        grown = self.gate.rss_kib() - before
        if os.environ.get("RG_SHOW_RSS"):
            print("RSS grew %d KiB, relayed %d" % (grown, last[0]))
        out = 256  # limits.output_buffer, KiB
        shared = 2 * 1024 * 16  # workers x recv_buffers x 16 KiB
        bound = shared + 50 * (2 * 2 * (out + 16) + 64)
        self.assertLess(grown, bound, "RSS grew %d KiB, relayed %d" %
                        (grown, last[0]))
        self.gate.assert_alive()

    @unittest.skipIf(h.is_asan_build(), "ASan's quarantine keeps freed "
                     "memory resident")
    def test_memory_bounded_with_50_clients_that_pipeline_without_reading(
            self):
        """50 sessions send NOOPs as fast as ringgate takes them and read
        nothing back: the answers fill the client's queue, the store stops
        reading, the back end's queue fills and ringgate stops reading the
        client. Same bound as above."""
        socks = []
        for _ in range(50):
            t = self.ctx().wrap_socket(socket.create_connection(
                ("127.0.0.1", self.port("imaps")), timeout=h.IO_TIMEOUT),
                server_hostname="localhost")
            self.addCleanup(t.close)
            f = t.makefile("rb")
            f.readline()
            t.sendall(b"a LOGIN %s %s\r\n" % (BOB.encode(), BOB_PW.encode()))
            rs.read_tagged(self, f, b"a")
            t.setblocking(False)
            socks.append(t)
        before = self.gate.rss_kib()
        chunk = b"x NOOP\r\n" * 2048  # 16 KiB
        sent, idle_rounds = 0, 0
        while idle_rounds < 20 and sent < 50 * 64 * 1024 * 1024:
            took = 0
            for t in socks:
                try:
                    took += t.send(chunk)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                        BlockingIOError):
                    pass
            sent += took
            idle_rounds = idle_rounds + 1 if took == 0 else 0
            if took == 0:
                time.sleep(0.05)
        grown = self.gate.rss_kib() - before
        if os.environ.get("RG_SHOW_RSS"):
            print("RSS grew %d KiB, sent %d" % (grown, sent))
        out = 256
        shared = 2 * 1024 * 16
        bound = shared + 50 * (2 * 2 * (out + 16) + 64)
        self.assertLess(sent, 50 * 64 * 1024 * 1024, "nobody stopped us")
        self.assertLess(grown, bound, "RSS grew %d KiB" % grown)
        self.gate.assert_alive()


class FakeImap:
    """A back end on loopback that nobody should trust: mode "ok" speaks
    just enough IMAP for the master login and records the lines it got;
    "garbage" greets with noise, "silent" never says a word, "close"
    hangs up half-way through its greeting."""

    CAPS = b"IMAP4rev1 SASL-IR AUTH=PLAIN ID IDLE FAKECAP"

    def __init__(self, mode):
        self.mode = mode
        self.lines = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        try:
            if self.mode == "silent":
                c.recv(1)  # until ringgate gives up
                return
            if self.mode == "garbage":
                c.sendall(b"\x00\xffHELLO? " + b"x" * 70000 + b"\r\n")
                c.recv(1)
                return
            if self.mode == "close":
                c.sendall(b"* OK [CAPAB")
                return
            c.sendall(b"* OK [CAPABILITY " + self.CAPS + b"] fake\r\n")
            f = c.makefile("rb")
            while True:
                line = f.readline()
                if not line:
                    return
                self.lines.append(line)
                tag, _, rest = line.partition(b" ")
                cmd = rest.split(b" ", 1)[0].strip().upper()
                if cmd == b"ID":
                    c.sendall(b"* ID NIL\r\n%s OK ID done\r\n" % tag)
                elif cmd == b"AUTHENTICATE":
                    c.sendall(b"%s OK [CAPABILITY %s] in\r\n" %
                              (tag, self.CAPS))
                elif cmd == b"CAPABILITY":
                    c.sendall(b"* CAPABILITY %s\r\n%s OK done\r\n" %
                              (self.CAPS, tag))
                elif cmd == b"LOGOUT":
                    c.sendall(b"* BYE bye\r\n%s OK done\r\n" % tag)
                    return
                else:
                    c.sendall(b"%s OK done\r\n" % tag)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class TestFakeBackends(unittest.TestCase):
    """ringgate in front of back ends written here: the client's ID goes
    along; a back end that answers garbage, never answers or hangs up in
    its greeting gives the client the temporary error and ringgate keeps
    serving."""

    def gate_for(self, fake, proxy=False):
        d = h.temp_dir(self)
        self.cert, key = h.make_cert(d, "ec", stem="server")
        store = {"imap": [{"name": "i", "listen": "127.0.0.1:%d" %
                           fake.port}],
                 "pop3": [{"name": "p", "listen": "127.0.0.1:1"}],
                 "submission": [{"name": "s", "listen": "127.0.0.1:2"}]}
        cfg = gate_cfg(d, [(self.cert, key)], store)
        cfg["backend_login"]["timeout"] = "1s"
        cfg["health"] = {"interval": "1h"}
        if proxy:
            cfg["imap"][1].update(proxy_protocol=True,
                                  proxy_nets=["127.0.0.0/8"])
        g = start_proc(h.Ringgate(d, cfg), self)
        return g, int(cfg["imap"][1]["listen"].rsplit(":", 1)[1])

    def imaps(self, port):
        t = h.client_context(cafiles=[self.cert]).wrap_socket(
            socket.create_connection(("127.0.0.1", port),
                                     timeout=h.IO_TIMEOUT),
            server_hostname="localhost")
        self.addCleanup(t.close)
        f = t.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        return t, f

    def test_client_id_forwarded_and_capability_passed_on(self):
        fake = FakeImap("ok")
        self.addCleanup(fake.close)
        g, port = self.gate_for(fake)
        t, f = self.imaps(port)
        t.sendall(b'i ID ("name" "testclient" "x-originating-ip" '
                  b'"6.6.6.6" "version" NIL)\r\n')
        rs.read_tagged(self, f, b"i")
        t.sendall(b"a LOGIN %s %s\r\n" % (BOB.encode(), BOB_PW.encode()))
        ok = rs.read_tagged(self, f, b"a")[-1]
        self.assertIn(b"FAKECAP", ok)
        ids = [l for l in fake.lines if b" ID " in l]
        self.assertEqual(len(ids), 1, fake.lines)
        self.assertIn(b'"name" "testclient"', ids[0])
        self.assertIn(b'"version" NIL', ids[0])
        self.assertIn(b'"x-originating-ip" "127.0.0.1"', ids[0])
        self.assertNotIn(b"6.6.6.6", ids[0])
        g.assert_alive()

    def test_proxy_header_from_the_balancer_names_the_client(self):
        """A PROXY v1 header from a trusted balancer: the client is the
        address it names, in the audit line and in the ID the back end
        gets."""
        fake = FakeImap("ok")
        self.addCleanup(fake.close)
        g, port = self.gate_for(fake, proxy=True)
        s = socket.create_connection(("127.0.0.1", port),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 40001 993\r\n")
        t = h.client_context(cafiles=[self.cert]).wrap_socket(
            s, server_hostname="localhost")
        self.addCleanup(t.close)
        f = t.makefile("rb")
        self.addCleanup(f.close)
        self.assertTrue(f.readline().startswith(b"* OK"))
        t.sendall(b"a LOGIN %s %s\r\nb LOGOUT\r\n" %
                  (BOB.encode(), BOB_PW.encode()))
        self.assertTrue(rs.read_tagged(self, f, b"a")[-1].startswith(
            b"a OK"))
        rs.read_tagged(self, f, b"b")
        ids = [l for l in fake.lines if b" ID " in l]
        self.assertIn(b'"x-originating-ip" "198.51.100.7"', ids[0])
        self.assertIn(b'"x-originating-port" "40001"', ids[0])
        h.wait_for(lambda: "client=198.51.100.7:40001" in "".join(
            l for l in g.stderr().splitlines(True) if "gate.session" in l),
            what="the audit line")

    def test_broken_backends_give_the_temporary_error(self):
        for mode in ("garbage", "silent", "close"):
            with self.subTest(mode=mode):
                fake = FakeImap(mode)
                self.addCleanup(fake.close)
                g, port = self.gate_for(fake)
                answers = []
                for _ in range(2):  # and again: ringgate still serves
                    t, f = self.imaps(port)
                    t.sendall(b"a LOGIN %s %s\r\n" % (BOB.encode(),
                                                       BOB_PW.encode()))
                    answers.append(rs.read_tagged(self, f, b"a")[-1])
                for a in answers:
                    self.assertTrue(a.startswith(b"a NO [UNAVAILABLE]"), a)
                    self.assertNotIn(str(fake.port).encode(), a)
                self.assertGreaterEqual(g.metric(
                    "ringgate_backend_logins_total", proto="imap",
                    result="temp"), 1)
                g.assert_alive()


@unittest.skipIf(ul.DOVECOT_MISSING, ul.DOVECOT_MISSING)
class TestDovecotBehind(unittest.TestCase):
    """Debian's Dovecot (imapd, pop3d) with a master passdb as the back
    end, unchanged: ringgate logs alice in there as the master. The
    Dovecot set-up is test_upstream_login's."""

    stop = ul.DovecotBackend.stop
    dump_log_on_failure = ul.DovecotBackend.dump_log_on_failure
    dovecot_log = ul.DovecotBackend.dovecot_log

    def setUp(self):
        ul.DovecotBackend.setUp(self)
        self.assertEqual((ul.MASTER, ul.MASTER_PW), (MASTER, MASTER_PW))
        d = os.path.join(self.dir, "gate")
        os.mkdir(d)
        store = {"imap": [{"name": "i", "listen": "127.0.0.1:%d" %
                           self.imap}],
                 "pop3": [{"name": "p", "listen": "127.0.0.1:%d" %
                           self.pop3}],
                 "submission": [{"name": "s", "listen": "127.0.0.1:1"}]}
        cfg = gate_cfg(d, [(self.cert, self.key)], store)
        cfg["submission"] = []
        cfg["backends"][0].pop("submission")
        rs.write_passwd(os.path.join(d, "gate.passwd"),
                        {"alice": "alice-gate-pw"})
        self.gate = start_proc(h.Ringgate(d, cfg), self)

    def gate_imaps(self):
        port = port_of(self.gate.cfg, "imap", "imaps")
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=h.client_context(
            cafiles=[self.cert]), timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        m.login("alice", "alice-gate-pw")
        return m

    def test_imap_login_append_fetch_idle_and_pop3(self):
        m = self.gate_imaps()
        self.assertEqual(m.select("INBOX")[0], "OK")
        w = self.gate_imaps()
        w.select("INBOX")
        tag = w._new_tag()
        w.send(tag + b" IDLE\r\n")
        self.assertTrue(w.readline().startswith(b"+"))
        typ, _ = m.append("INBOX", None, None,
                          message("a@x", "alice", "through-to-dovecot"))
        self.assertEqual(typ, "OK")
        while True:  # Dovecot may say more first ("* OK Still here")
            line = w.readline()
            self.assertTrue(line, "IDLE connection closed")
            if b"EXISTS" in line:
                break
        w.send(b"DONE\r\n")
        m.noop()
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK")
        self.assertIn(b"through-to-dovecot", data[0][1])
        p = poplib.POP3_SSL("127.0.0.1", port_of(self.gate.cfg, "pop3",
                                                 "pop3s"),
                            context=h.client_context(cafiles=[self.cert]),
                            timeout=20)
        self.addCleanup(GateCase.quietly, p.quit)
        p.user("alice")
        p.pass_("alice-gate-pw")
        self.assertEqual(p.stat()[0], 1)
        self.assertIn("master", self.dovecot_log().lower())


if __name__ == "__main__":
    unittest.main()
