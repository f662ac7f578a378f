"""test_ringstore_pop3.py - ringstore's POP3 service (issue 11, part 1)
against clients nobody here wrote: Python's poplib (plain, STLS, POP3S),
curl's pop3:// and pop3s://, fetchmail, imaplib for what IMAP sees of the
same INBOX, and raw sockets for SASL, SCRAM, dot-stuffing on the wire and
bad input.

Listeners of each store: "pop3" (STLS, not trusted: no password before
TLS), "pop3s" (implicit TLS), "pop3t" (trusted for cleartext, as behind
ringgate) and "imap" (trusted). Messages go in through IMAP APPEND, or
straight into the Maildir as another program would drop them (LF line
ends, no W= in the name).
"""

import base64
import getpass
import hashlib
import hmac
import imaplib
import os
import poplib
import random
import re
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD
MASTER, MASTER_PW = "gate", "master-secret-pw"
OTHER, OTHER_PW = "other@example.test", "other-user-pw"
CURL = shutil.which("curl")
FETCHMAIL = shutil.which("fetchmail")


def need(tool, name):
    if tool is None:
        raise unittest.SkipTest("%s is not installed (scripts/deps.sh)" %
                                name)


def mail(subject, body=b"hello\r\n"):
    return (b"From: a@example.org\r\nTo: %s\r\nSubject: %s\r\n\r\n"
            % (USER.encode(), subject.encode())) + body


def unstuff(wire):
    """A multi-line POP3 answer body (after the +OK line, through the
    terminating line) back into the message bytes."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n", wire[-20:]
    body = wire[:-3]
    lines = body.split(b"\r\n")
    out = [ln[1:] if ln.startswith(b".") else ln for ln in lines]
    return b"\r\n".join(out)


class Raw:
    """A line-level POP3 client over a socket (plain or TLS)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.greeting = self.line()

    def recv_more(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("closed; have %r" % self.buf[-200:])
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.recv_more()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def multi(self):
        """The rest of a multi-line answer, terminator included."""
        while b"\r\n.\r\n" not in self.buf and not self.buf.startswith(
                b".\r\n"):
            self.recv_more()
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b".\r\n"
        i = self.buf.index(b"\r\n.\r\n") + 5
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, text):
        self.send(text)
        return self.line()

    def send(self, text):
        self.s.sendall(text + b"\r\n")

    def closed(self):
        """True once the server has closed (after what it sent)."""
        try:
            while True:
                data = self.s.recv(65536)
                if not data:
                    return True
                self.buf += data
        except OSError:
            return True

    def close(self):
        self.s.close()


class Pop3Case(unittest.TestCase):
    limits = {}

    def setUp(self):
        self.dir = h.temp_dir(self)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("%s:%s::::::\n" % (USER, rs.scram_hash(PASSWORD)))
            f.write("%s:%s::::::\n" % (MASTER, rs.scram_hash(MASTER_PW)))
            f.write("%s:%s::::::\n" % (OTHER, rs.scram_hash(OTHER_PW)))
        cfg = rs.tls_store_config(self, limits=self.limits)
        port = lambda: "127.0.0.1:%d" % h.free_port()
        cfg["imap"] = [{"name": "imap", "listen": port(), "trusted": True}]
        cfg["pop3"] = [
            {"name": "pop3", "listen": port(), "starttls": True},
            {"name": "pop3s", "listen": port(), "tls": True},
            {"name": "pop3t", "listen": port(), "trusted": True},
        ]
        cfg["auth"]["master_users"] = [MASTER]
        cfg["auth"]["master_nets"] = ["127.0.0.0/8"]
        self.store = rs.Ringstore(self.dir, cfg).start(self)
        self.maildir = os.path.join(self.dir, "mail", "example.test",
                                    "demo", "Maildir")

    # -- helpers
    def port(self, name):
        for r in self.store.cfg["pop3"] + self.store.cfg["imap"]:
            if r["name"] == name:
                return int(r["listen"].rsplit(":", 1)[1])
        raise KeyError(name)

    def ctx(self):
        return h.client_context(cafiles=[self.cert])

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.port("imap"), timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        m.login(USER, PASSWORD)
        return m

    def append(self, *messages):
        m = self.imap()
        for msg in messages:
            typ, _ = m.append("INBOX", None, None, msg)
            self.assertEqual(typ, "OK")
        m.logout()

    def drop(self, name, data):
        """A message as another program delivers it: straight into
        new/ (the Maildir exists after the first login)."""
        os.makedirs(os.path.join(self.maildir, "new"), exist_ok=True)
        tmp = os.path.join(self.maildir, "tmp", name)
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.maildir, "new", name))

    def pop(self, listener="pop3t", login=True):
        if listener == "pop3s":
            p = poplib.POP3_SSL("127.0.0.1", self.port(listener),
                                context=self.ctx(), timeout=20)
        else:
            p = poplib.POP3("127.0.0.1", self.port(listener), timeout=20)
        self.addCleanup(self.close_quietly, p)
        if login:
            p.user(USER)
            p.pass_(PASSWORD)
        return p

    @staticmethod
    def close_quietly(p):
        try:
            p.close()
        except Exception:
            pass

    def raw(self, listener="pop3t", login=False):
        port = self.port(listener)
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        if listener == "pop3s":
            s = self.ctx().wrap_socket(s, server_hostname="localhost")
        r = Raw(s)
        self.addCleanup(r.close)
        self.assertTrue(r.greeting.startswith(b"+OK"), r.greeting)
        if login:
            self.assertTrue(r.cmd(b"USER " + USER.encode()).startswith(
                b"+OK"))
            ln = r.cmd(b"PASS " + PASSWORD.encode())
            self.assertTrue(ln.startswith(b"+OK"), ln)
        return r

    def pop_retry(self, listener="pop3t"):
        """Log in, waiting while an ending session still holds the
        maildrop (its close is noticed a moment after ours)."""
        got = []

        def attempt():
            try:
                got.append(self.pop(listener))
                return True
            except poplib.error_proto as e:
                if b"[IN-USE]" not in e.args[0]:
                    raise
                return False
        h.wait_for(attempt, timeout=10, what="the maildrop unlocked")
        return got[0]

    def imap_uids(self):
        m = self.imap()
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
        typ, data = m.uid("SEARCH", "ALL")
        uids = [int(x) for x in data[0].split()]
        m.logout()
        return uidvalidity, uids

    def served_meanwhile(self):
        """Another user gets a whole session (over TLS) meanwhile."""
        p = poplib.POP3_SSL("127.0.0.1", self.port("pop3s"),
                            context=self.ctx(), timeout=20)
        self.addCleanup(self.close_quietly, p)
        p.user(OTHER)
        p.pass_(OTHER_PW)
        self.assertEqual(p.noop(), b"+OK")
        p.stat()
        p.quit()

    def metric(self, name, **labels):
        return self.store.metric("ringstore_" + name, **labels)


class TestClients(Pop3Case):
    def test_user_pass_and_listing(self):
        self.append(mail("one"), mail("two", b"second\r\nbody\r\n"))
        p = self.pop()
        count, size = p.stat()
        self.assertEqual(count, 2)
        resp, listing, _ = p.list()
        sizes = [int(x.split()[1]) for x in listing]
        self.assertEqual(sum(sizes), size)
        self.assertEqual(sizes[1], len(mail("two", b"second\r\nbody\r\n")))
        resp, lines, octets = p.retr(2)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n",
                         mail("two", b"second\r\nbody\r\n"))
        self.assertEqual(p.noop(), b"+OK")
        p.quit()

    def test_stls_required_for_passwords(self):
        self.append(mail("tls"))
        p = self.pop("pop3", login=False)
        caps = p.capa()
        self.assertIn("STLS", caps)
        self.assertNotIn("USER", caps)
        self.assertNotIn("SASL", caps)
        self.assertIn("RESP-CODES", caps)
        self.assertIn("AUTH-RESP-CODE", caps)
        with self.assertRaises(poplib.error_proto) as e:
            p.user(USER)
        self.assertIn(b"[AUTH]", e.exception.args[0])
        p.stls(self.ctx())
        caps = p.capa()
        self.assertNotIn("STLS", caps)
        self.assertIn("USER", caps)
        self.assertIn("PLAIN", caps["SASL"])
        self.assertIn("SCRAM-SHA-256", caps["SASL"])
        p.user(USER)
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_stls_drops_pipelined_plaintext(self):
        r = self.raw("pop3")
        r.send(b"STLS\r\nUSER " + USER.encode())
        self.assertTrue(r.line().startswith(b"+OK"))
        s = self.ctx().wrap_socket(r.s, server_hostname="localhost")
        self.addCleanup(s.close)
        r2 = Raw.__new__(Raw)
        r2.s, r2.buf = s, b""
        # the USER sent in the clear is not a command: PASS has no USER
        self.assertTrue(r2.cmd(b"PASS " + PASSWORD.encode()).startswith(
            b"-ERR"))

    def test_pop3s(self):
        self.append(mail("implicit"))
        p = self.pop("pop3s")
        self.assertEqual(p.stat()[0], 1)
        self.assertIn(b"Subject: implicit", p.top(1, 0)[1])
        p.quit()

    def test_wrong_password_and_unknown_user(self):
        p = self.pop(login=False)
        p.user(USER)
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("wrong")
        self.assertTrue(e.exception.args[0].startswith(b"-ERR [AUTH]"))
        # RFC 1939: after a failed PASS, USER again
        with self.assertRaises(poplib.error_proto):
            p.pass_(PASSWORD)
        p.user(USER)
        p.pass_(PASSWORD)
        p.quit()

    def test_auth_plain_initial_response_and_challenge(self):
        r = self.raw()
        ir = base64.b64encode(b"\0%s\0%s" % (USER.encode(),
                                               PASSWORD.encode()))
        ln = r.cmd(b"AUTH PLAIN " + ir)
        self.assertTrue(ln.startswith(b"+OK"), ln)
        self.assertTrue(r.cmd(b"STAT").startswith(b"+OK 0 "))
        self.assertTrue(r.cmd(b"QUIT").startswith(b"+OK"))
        r = self.raw()
        self.assertEqual(r.cmd(b"AUTH PLAIN"), b"+ ")
        ln = r.cmd(ir)
        self.assertTrue(ln.startswith(b"+OK"), ln)
        r.cmd(b"QUIT")
        # cancelled exchange
        r = self.raw()
        self.assertEqual(r.cmd(b"AUTH PLAIN"), b"+ ")
        self.assertTrue(r.cmd(b"*").startswith(b"-ERR"))
        # poplib's own AUTH? it has none beyond APOP/RPOP: the mechanism
        # list as clients ask for it
        r.send(b"AUTH")
        self.assertEqual(r.line(), b"+OK")
        self.assertIn(b"PLAIN", r.multi())

    def test_master_identity(self):
        self.append(mail("for master"))
        r = self.raw()
        ir = base64.b64encode(b"%s\0%s\0%s" % (
            USER.encode(), MASTER.encode(), MASTER_PW.encode()))
        ln = r.cmd(b"AUTH PLAIN " + ir)
        self.assertTrue(ln.startswith(b"+OK"), ln)
        self.assertTrue(r.cmd(b"STAT").startswith(b"+OK 1 "))
        r.cmd(b"QUIT")
        # the master's password for a user, as the master, is wrong
        r = self.raw()
        ir = base64.b64encode(b"\0%s\0%s" % (USER.encode(),
                                               MASTER_PW.encode()))
        self.assertTrue(r.cmd(b"AUTH PLAIN " + ir).startswith(
            b"-ERR [AUTH]"))

    def test_scram_sha_256(self):
        r = self.raw()
        nonce = base64.b64encode(os.urandom(18))
        bare = b"n=%s,r=%s" % (USER.encode(), nonce)
        ln = r.cmd(b"AUTH SCRAM-SHA-256 " + base64.b64encode(b"n,," + bare))
        self.assertTrue(ln.startswith(b"+ "), ln)
        first = base64.b64decode(ln[2:])
        attrs = dict(kv.split(b"=", 1) for kv in first.split(b","))
        self.assertTrue(attrs[b"r"].startswith(nonce))
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                     base64.b64decode(attrs[b"s"]),
                                     int(attrs[b"i"]))
        ckey = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        skey = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        final = b"c=biws,r=" + attrs[b"r"]
        msg = bare + b"," + first + b"," + final
        sig = hmac.new(hashlib.sha256(ckey).digest(), msg,
                       hashlib.sha256).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig)))
        ln = r.cmd(base64.b64encode(final + b",p=" + proof))
        # the server's signature, then +OK (RFC 5034 allows either way)
        if ln.startswith(b"+ "):
            v = base64.b64decode(ln[2:])
            want = hmac.new(skey, msg, hashlib.sha256).digest()
            self.assertEqual(v, b"v=" + base64.b64encode(want))
            ln = r.cmd(b"")
        self.assertTrue(ln.startswith(b"+OK"), ln)

    def curl(self, url, *args, tls=False):
        need(CURL, "curl")
        cmd = [CURL, "-sS", "--max-time", "20", "-u",
               "%s:%s" % (USER, PASSWORD)] + list(args)
        if tls:
            cmd += ["--cacert", self.cert]
        p = subprocess.run(cmd + [url], capture_output=True, timeout=40)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_curl_pop3_and_pop3s(self):
        one, two = mail("curl one"), mail("curl two", b".dot\r\nx\r\n")
        self.append(one, two)
        base = "pop3://127.0.0.1:%d/" % self.port("pop3t")
        listing = self.curl(base)
        self.assertEqual(listing, b"1 %d\r\n2 %d\r\n" % (len(one), len(two)))
        self.assertEqual(self.curl(base + "2"), two)
        self.curl(base + "1", "-X", "DELE", "-I")
        _, uids = self.imap_uids()
        self.assertEqual(len(uids), 1)
        tls = "pop3s://localhost:%d/" % self.port("pop3s")
        self.assertEqual(self.curl(tls + "1", tls=True), two)
        # STLS on the plain listener, required
        stls = "pop3://localhost:%d/1" % self.port("pop3")
        self.assertEqual(self.curl(stls, "--ssl-reqd", tls=True), two)

    def test_fetchmail_retrieves_and_deletes(self):
        need(FETCHMAIL, "fetchmail")
        msgs = [mail("fm %d" % i, b"line\r\n.starts with dot\r\n")
                for i in range(3)]
        self.append(*msgs)
        out = os.path.join(self.dir, "fetched")
        os.mkdir(out)
        rc = os.path.join(self.dir, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no syslog\n'
                    'poll 127.0.0.1 protocol POP3 port %d auth password\n'
                    '  user "%s" password "%s" is "%s" here\n'
                    '  mda "cat > %s/msg.$$"\n'
                    '  fetchall nokeep sslproto \'\'\n'
                    % (self.port("pop3t"), USER, PASSWORD,
                       getpass.getuser(), out))
        os.chmod(rc, stat.S_IRUSR | stat.S_IWUSR)
        env = dict(os.environ, FETCHMAILHOME=self.dir, HOME=self.dir)
        p = subprocess.run([FETCHMAIL, "-f", rc, "-v", "--nodetach"],
                           capture_output=True, timeout=40, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = []
        for name in os.listdir(out):
            with open(os.path.join(out, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), 3, p.stdout)
        # fetchmail adds a Received: line and hands the MDA LF lines
        for m in msgs:
            body = m.replace(b"\r\n", b"\n")
            self.assertTrue(any(g.endswith(body) for g in got),
                            (body, got))
        _, uids = self.imap_uids()
        self.assertEqual(uids, [])


class TestMaildrop(Pop3Case):
    def test_uidl_stable_and_equal_to_imap(self):
        self.append(mail("u1"), mail("u2"), mail("u3"))
        p = self.pop()
        first = p.uidl()[1]
        self.assertTrue(p.uidl(2).startswith(b"+OK 2 "))
        p.quit()
        uidvalidity, uids = self.imap_uids()
        want = [b"%d %d.%d" % (i + 1, uidvalidity, u)
                for i, u in enumerate(uids)]
        self.assertEqual(first, want)
        # a message dropped by another program gets the next UID in both
        self.drop("1700000000.M1P1.elsewhere", b"Subject: lf\n\nonly LF\n")
        p = self.pop_retry()
        again = p.uidl()[1]
        p.quit()
        uidvalidity2, uids2 = self.imap_uids()
        self.assertEqual(uidvalidity2, uidvalidity)
        self.assertEqual(again[:3], first)
        self.assertEqual(again[3], b"4 %d.%d" % (uidvalidity, uids2[3]))

    def test_lf_only_message_goes_out_as_crlf(self):
        self.append(mail("first"))
        self.drop("1700000000.M2P2.elsewhere",
                  b"Subject: lf\n\n.dot\nlast line without newline")
        r = self.raw(login=True)
        r.send(b"RETR 2")
        self.assertTrue(r.line().startswith(b"+OK"))
        wire = r.multi()
        self.assertNotIn(b"\n", wire.replace(b"\r\n", b""))
        self.assertEqual(wire, b"Subject: lf\r\n\r\n..dot\r\n"
                               b"last line without newline\r\n.\r\n")

    def test_in_use(self):
        a = self.pop()
        with self.assertRaises(poplib.error_proto) as e:
            self.pop()
        self.assertTrue(e.exception.args[0].startswith(b"-ERR [IN-USE]"),
                        e.exception.args[0])
        # IMAP is not locked out
        self.imap().logout()
        a.quit()
        self.pop_retry().quit()
        self.assertGreaterEqual(self.metric("pop3_refused_total",
                                            reason="in_use"), 1)

    def test_top(self):
        body = b"b1\r\nb2\r\n.b3\r\nb4\r\n"
        msg = mail("top", body)
        self.append(msg)
        head = msg[:msg.index(b"\r\n\r\n") + 4]
        r = self.raw(login=True)
        r.send(b"TOP 1 0")
        self.assertTrue(r.line().startswith(b"+OK"))
        self.assertEqual(unstuff(r.multi()), head)
        r.send(b"TOP 1 3")
        self.assertTrue(r.line().startswith(b"+OK"))
        self.assertEqual(unstuff(r.multi()), head + b"b1\r\nb2\r\n.b3\r\n")
        r.send(b"TOP 1 100")
        self.assertTrue(r.line().startswith(b"+OK"))
        self.assertEqual(unstuff(r.multi()), msg)
        self.assertTrue(r.cmd(b"TOP 2 1").startswith(b"-ERR"))

    def test_dele_rset(self):
        self.append(mail("a"), mail("b"))
        p = self.pop()
        p.dele(1)
        self.assertEqual(p.stat()[0], 1)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)
        self.assertEqual(len(p.list()[1]), 1)
        p.rset()
        self.assertEqual(p.stat()[0], 2)
        p.quit()
        self.assertEqual(len(self.imap_uids()[1]), 2)

    def test_dele_then_drop_keeps_message(self):
        self.append(mail("kept"))
        r = self.raw(login=True)
        self.assertTrue(r.cmd(b"DELE 1").startswith(b"+OK"))
        r.close()
        p = self.pop_retry()
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        self.assertEqual(len(self.imap_uids()[1]), 1)

    def test_dele_quit_removes(self):
        self.append(mail("gone"), mail("stays"))
        uidvalidity, uids = self.imap_uids()
        p = self.pop()
        p.dele(1)
        self.assertIn(b"1 messages deleted", p.quit())
        _, after = self.imap_uids()
        self.assertEqual(after, uids[1:])
        p = self.pop_retry()
        self.assertEqual(p.uidl()[1], [b"1 %d.%d" % (uidvalidity, uids[1])])
        p.quit()

    def test_dot_stuffing_round_trip(self):
        body = (b".\r\n..\r\n.start\r\nmid.dle\r\n. \r\n...\r\n"
                b"\r\n.\r\nend\r\n")
        msg = mail("dots", body)
        self.append(msg)
        r = self.raw(login=True)
        r.send(b"RETR 1")
        self.assertEqual(r.line(), b"+OK %d octets" % len(msg))
        wire = r.multi()
        self.assertIn(b"\r\n..\r\n...\r\n..start\r\n", wire)
        self.assertEqual(unstuff(wire), msg)
        # and poplib's own unstuffing agrees
        r.cmd(b"QUIT")
        p = self.pop_retry()
        self.assertEqual(b"\r\n".join(p.retr(1)[1]) + b"\r\n", msg)
        p.quit()

    def test_large_retr_slow_reader_memory_bounded(self):
        size = 50 << 20
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
               b"01234567890123\r\n"
        head = b"Subject: big\r\n\r\n"
        n = (size - len(head)) // len(line)
        digest = hashlib.sha256()
        self.pop().quit()  # the Maildir exists
        path = os.path.join(self.maildir, "tmp", "big")
        with open(path, "wb") as f:
            f.write(head)
            digest.update(head)
            chunk = line * 1024
            for _ in range(n // 1024):
                f.write(chunk)
                digest.update(chunk)
        total = os.path.getsize(path)
        os.rename(path, os.path.join(
            self.maildir, "new", "1700000000.M3P3.big,S=%d,W=%d" %
            (total, total)))
        base = self.store.rss_kib()
        s = socket.create_connection(("127.0.0.1", self.port("pop3t")),
                                     timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        r = Raw(s)
        self.addCleanup(r.close)
        r.cmd(b"USER " + USER.encode())
        self.assertTrue(r.cmd(b"PASS " + PASSWORD.encode()).startswith(
            b"+OK"))
        r.send(b"RETR 1")
        self.assertEqual(r.line(), b"+OK %d octets" % total)
        got = hashlib.sha256()
        tail = r.buf
        r.buf = b""
        received = len(tail)
        top = base
        k = 0
        while True:
            data = s.recv(64 << 10)
            self.assertTrue(data, "closed after %d bytes" % received)
            tail += data
            received += len(data)
            if len(tail) > 5:
                got.update(tail[:-5])
                tail = tail[-5:]
            if tail == b"\r\n.\r\n" and received >= total + 3:
                break
            k += 1
            if k % 4 == 0:
                top = max(top, self.store.rss_kib())
                time.sleep(0.01)  # a slow reader: 256 KiB, then a pause
            if k == 64:
                self.served_meanwhile()
        got.update(b"\r\n")  # the last line's CRLF
        self.assertEqual(got.hexdigest(), digest.hexdigest())
        grown = (top - base) / 1024.0
        print("\nPOP3 RETR 50 MiB: ringstore RSS grew %.1f MiB" % grown)
        self.assertLess(grown, 40)
        self.assertTrue(r.cmd(b"NOOP").startswith(b"+OK"))
        self.assertGreaterEqual(self.metric("pop3_retr_bytes_total"), total)
        # once more with a reader that keeps up: the rate is printed for
        # docs, not judged
        r.send(b"RETR 1")
        self.assertTrue(r.line().startswith(b"+OK"))
        start, tail, received = time.monotonic(), r.buf, len(r.buf)
        while not tail.endswith(b"\r\n.\r\n") or received < total + 3:
            data = s.recv(1 << 20)
            self.assertTrue(data)
            received += len(data)
            tail = (tail + data)[-5:]
        secs = time.monotonic() - start
        print("POP3 RETR 50 MiB, fast reader: %.0f MB/s" %
              (received / secs / 1e6))


class TestBadInput(Pop3Case):
    limits = {"bad_commands": 5}

    def test_each_bad_line_gets_err(self):
        for login in (False, True):
            for bad in (b"NOOP " + b"x" * 10000, b"NO\0OP", b"STAT\n",
                        b"FROB", b"RETR 0", b"RETR 99", b"LIST 1 2",
                        b"TOP 1"):
                r = self.raw(login=login)
                r.s.sendall(bad if bad.endswith(b"\n") else bad + b"\r\n")
                ln = r.line()
                self.assertTrue(ln.startswith(b"-ERR"), (login, bad[:20], ln))
                # the session goes on
                try:
                    ln = r.cmd(b"NOOP")
                except OSError as e:
                    ln = repr(e).encode()
                self.assertTrue(ln.startswith(b"+OK"), (login, bad[:20], ln))
                r.cmd(b"QUIT")
            self.served_meanwhile()
        self.assertGreater(self.metric("pop3_refused_total",
                                       reason="bad_command"), 0)
        self.assertGreater(self.metric("pop3_bad_commands_total"), 0)

    def test_bad_command_limit_closes(self):
        r = self.raw(login=True)
        for i in range(5):
            r.send(b"FROB")
        lines = [r.line() for _ in range(6)]
        self.assertTrue(all(ln.startswith(b"-ERR") for ln in lines), lines)
        self.assertIn(b"Too many bad commands", lines[-1])
        self.assertTrue(r.closed())
        self.served_meanwhile()

    def test_pipelined_commands_split_at_random(self):
        self.append(mail("p"))
        rnd = random.Random(11)
        cmds = [rnd.choice([b"NOOP", b"STAT", b"LIST 1", b"UIDL 1"])
                for _ in range(10000)]
        data = b"".join(c + b"\r\n" for c in cmds) + b"QUIT\r\n"
        r = self.raw(login=True)
        r.s.settimeout(60)
        answers = []
        done = threading.Event()

        def reader():
            try:
                while len(answers) < len(cmds) + 1:
                    answers.append(r.line())
            except Exception as e:
                answers.append(repr(e).encode())
            done.set()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        i = 0
        while i < len(data):
            n = rnd.randint(1, 3000)
            r.s.sendall(data[i:i + n])
            i += n
        self.served_meanwhile()
        t.join(60)
        self.assertEqual(len(answers), len(cmds) + 1, answers[-3:])
        for c, a in zip(cmds, answers):
            self.assertTrue(a.startswith(b"+OK"), (c, a))
        self.assertTrue(answers[-1].startswith(b"+OK Logging out"))
        self.assertGreaterEqual(self.metric("pop3_commands_total"), 10001)


class TestIdle(Pop3Case):
    limits = {"idle_timeout": "1s"}

    def test_idle_session_is_closed_and_applies_nothing(self):
        self.append(mail("idle"))
        r = self.raw(login=True)
        self.assertTrue(r.cmd(b"DELE 1").startswith(b"+OK"))
        # the server speaks last: an -ERR, then the close
        self.assertTrue(r.closed())
        self.assertIn(b"-ERR Disconnected for inactivity", r.buf)
        self.assertEqual(len(self.imap_uids()[1]), 1)
        self.assertEqual(self.metric("pop3_refused_total", reason="idle"),
                         1)


if __name__ == "__main__":
    unittest.main()
