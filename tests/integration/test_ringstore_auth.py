"""test_ringstore_auth.py - every SASL mechanism of ringstore's IMAP
AUTHENTICATE, driven by clients nobody here wrote.

Python's imaplib (LOGIN, AUTHENTICATE PLAIN, login_cram_md5), curl's IMAP
URLs (--login-options AUTH=LOGIN, AUTH=PLAIN, AUTH=CRAM-MD5) and GNU
SASL's gsasl command (SCRAM-SHA-256, and SCRAM-SHA-256-PLUS with
tls-exporter channel binding over ringstore's own STARTTLS). Over implicit
TLS (ringstore's IMAPS listener, ringgate's relay) gsasl runs in its
stdin/stdout mode and this file carries its bytes over a Python TLS
socket, since gsasl only does STARTTLS itself.

Covered: the right password for each mechanism; a wrong password, an
unknown user and (for SCRAM) a user stored as ARGON2ID all get the same
tagged NO; -PLUS offered only where ringstore terminates TLS 1.3, and a
correct proof bound to the wrong tls-exporter data (a hand-made SCRAM
client: Python's ssl cannot export keying material) refused; a
cancelled exchange answers BAD and the session goes on; nologin and
allow_nets= refused after a correct SCRAM proof as after a correct
PLAIN password; CRAM-MD5 only with auth.legacy_mechanisms; the SCRAM
secret file making two instances show an unknown user the same salt;
and logging in through ringgate's TLS relay with PLAIN, LOGIN and SCRAM.

A missing curl or gsasl skips its tests, except under CI=true where it
fails them (scripts/deps.sh installs both).
"""

import base64
import hashlib
import hmac
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import unittest

import harness as h
import rs_harness as rs

CURL = shutil.which("curl")
GSASL = shutil.which("gsasl")
PASSWD_TOOL = os.path.join(h.BUILD_DIR, "auth", "ringgate-passwd")

SCRAM_USER, SCRAM_PW = "demo@example.test", "ringgate-demo-pw"
PLAIN_USER, PLAIN_PW = "plain@example.test", "plain-secret-pw"
ARGON_USER, ARGON_PW = "argon@example.test", "argon-secret-pw"
NOLOGIN_USER, NOLOGIN_PW = "nologin@example.test", "nologin-secret-pw"
FARAWAY_USER, FARAWAY_PW = "faraway@example.test", "faraway-secret-pw"
LOCAL_USER, LOCAL_PW = "local@example.test", "local-secret-pw"
UNKNOWN_USER = "nobody@example.test"

AUTH_FAILED = b"NO [AUTHENTICATIONFAILED] Authentication failed"
INBOX_LISTED = rb'(?m)^\* LIST \([^)]*\) "/" "?INBOX"?\r$'


def need(tool, name, package):
    """Skip without the client, fail in CI (deps.sh installs it)."""
    if tool is None:
        if h.IN_CI:
            raise AssertionError("%s is missing: scripts/deps.sh installs "
                                 "%s" % (name, package))
        raise unittest.SkipTest("%s is not installed" % name)


def argon2_hash(password):
    """{ARGON2ID}... made by ringgate-passwd (the build's own tool)."""
    r = h.run([PASSWD_TOOL, "hash", "--scheme", "ARGON2ID"],
              input=password + "\n")
    return r.stdout.strip()


def write_users(path):
    """The passwd-file every case uses: SCRAM keys for most users, one
    {PLAIN} (CRAM-MD5), one ARGON2ID, one nologin, two with allow_nets=."""
    lines = [
        (SCRAM_USER, rs.scram_hash(SCRAM_PW), ""),
        (PLAIN_USER, "{PLAIN}" + PLAIN_PW, ""),
        (ARGON_USER, argon2_hash(ARGON_PW), ""),
        (NOLOGIN_USER, rs.scram_hash(NOLOGIN_PW), "nologin"),
        (FARAWAY_USER, rs.scram_hash(FARAWAY_PW), "allow_nets=10.0.0.0/8"),
        (LOCAL_USER, rs.scram_hash(LOCAL_PW), "allow_nets=127.0.0.0/8"),
    ]
    with open(path, "w") as f:
        for user, pw, extra in lines:
            f.write("%s:%s::::::%s\n" % (user, pw, extra))


def refusal(exc):
    """imaplib's error text ("NO" stripped; LOGIN's arrives as a bytes
    repr) as bytes, with the NO put back for comparing."""
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return b"NO " + text.encode()


def tagged(lines, tag=b"."):
    """The tagged reply lines (without the tag) of a transcript."""
    return [ln[len(tag) + 1:].rstrip(b"\r") for ln in lines.split(b"\n")
            if ln.startswith(tag + b" ")]


# ---------------------------------------------------------------- gsasl

def gsasl_connect(port, mech, user, password, *extra, timeout=30):
    """gsasl --imap --connect: (returncode, stdout transcript bytes)."""
    cmd = [GSASL, "--imap", "-d", "--quiet", "-m", mech, "-a", user,
           "-p", password, *extra, "--connect", "127.0.0.1:%d" % port]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def gsasl_over(sock, mech, user, password, timeout=30):
    """gsasl in its stdin/stdout mode over an open socket (plain or TLS):
    this function only moves bytes. Returns (returncode, what the server
    sent). The socket is closed afterwards."""
    p = subprocess.Popen([GSASL, "-c", "-d", "--imap", "--no-cb", "-m",
                          mech, "-a", user, "-p", password],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    watchdog = threading.Timer(timeout, p.kill)
    watchdog.start()
    got = []

    def down():
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                got.append(data)
                p.stdin.write(data)
                p.stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            try:
                p.stdin.close()
            except OSError:
                pass
    t = threading.Thread(target=down, daemon=True)
    t.start()
    try:
        for chunk in iter(lambda: p.stdout.read1(4096), b""):
            sock.sendall(chunk)
        rc = p.wait(timeout)
        # gsasl leaves after a NO without a LOGOUT: end the session so
        # the reader sees EOF
        try:
            sock.sendall(b"z LOGOUT\r\n")
        except OSError:
            pass
        t.join(timeout)
    finally:
        watchdog.cancel()
        p.stdout.close()
        p.stderr.close()
        sock.close()
    return rc, b"".join(got)


# ---------------------------------------------------------------- raw IMAP

class Raw:
    """A line-level IMAP client for what no client library does on
    purpose (cancel mid-exchange, inspect a server-first message)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(4096)
            if not data:
                raise AssertionError("connection closed; got %r" % self.buf)
            self.buf += data
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def send(self, text):
        self.s.sendall(text + b"\r\n")

    def until_tagged(self, tag):
        """Lines up to and including the tagged one."""
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out

    def close(self):
        self.s.close()


def b64(data):
    return base64.b64encode(data).decode()


def scram_exchange(r, mech, gs2, user, password, cbind=b""):
    """Run SCRAM by hand on a Raw session: gs2 header as given, the
    channel-binding data to claim, a correct proof for password. Returns
    the line after the proof (a "+ v=..." challenge or the tagged end)."""
    bare = b"n=%s,r=rOprNGfwEbeRWgbNEkqO" % user.encode()
    r.send(b"a AUTHENTICATE %s %s" % (mech.encode(),
                                      b64(gs2 + bare).encode()))
    ln = r.line()
    assert ln.startswith(b"+ "), ln
    first = base64.b64decode(ln[2:])
    attrs = dict(kv.split(b"=", 1) for kv in first.split(b","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                 base64.b64decode(attrs[b"s"]),
                                 int(attrs[b"i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = b"c=%s,r=%s" % (b64(gs2 + cbind).encode(), attrs[b"r"])
    sig = hmac.new(stored, bare + b"," + first + b"," + without_proof,
                   hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    r.send(b64(without_proof + b",p=" + b64(proof).encode()).encode())
    return r.line()


# ---------------------------------------------------------------- cases

class AuthCase(unittest.TestCase):
    """A ringstore with three listeners: "imap" (STARTTLS, not trusted),
    "trusted" (cleartext allowed, as behind ringgate) and "imaps"
    (implicit TLS). legacy switches CRAM-MD5 on."""

    legacy = True

    def setUp(self):
        self.dir = h.temp_dir(self)
        write_users(os.path.join(self.dir, "passwd"))
        cfg = rs.tls_store_config(self)
        cfg["imap"] += [
            {"name": "trusted", "listen": "127.0.0.1:%d" % h.free_port(),
             "trusted": True, "starttls": False},
            {"name": "imaps", "listen": "127.0.0.1:%d" % h.free_port(),
             "tls": True},
        ]
        cfg["auth"]["allow_plaintext"] = True
        cfg["auth"]["legacy_mechanisms"] = self.legacy
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    # -- clients
    def tls_ctx(self, **kw):
        return h.client_context(cafiles=[self.cert], **kw)

    def imap(self, listener="trusted"):
        port = self.store.port(listener)
        if listener == "imaps":
            m = imaplib.IMAP4_SSL("127.0.0.1", port,
                                  ssl_context=self.tls_ctx(), timeout=20)
        else:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            if listener == "imap":
                m.starttls(self.tls_ctx())
        self.addCleanup(rs.logout_quietly, m)
        return m

    def raw(self, listener="trusted"):
        port = self.store.port(listener)
        if listener == "imaps":
            s = h.tls_connect(port, self.tls_ctx())
        else:
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
        r = Raw(s)
        self.addCleanup(r.close)
        return r

    def curl(self, mech, user, password, listener="trusted"):
        need(CURL, "curl", "curl")
        url = "imap://127.0.0.1:%d/" % self.store.port(listener)
        cmd = [CURL, "-v", "-sS", "--max-time", "20", "-u",
               "%s:%s" % (user, password), "--login-options", "AUTH=" + mech]
        if listener == "imap":
            cmd += ["--ssl-reqd", "--cacert", self.cert]
        p = subprocess.run(cmd + [url], capture_output=True, timeout=40)
        return p

    def log_events(self, event):
        return [ln for ln in self.store.stderr().splitlines()
                if "event=%s " % event in ln]

    def auth_log(self, user, mech):
        """The imap.auth lines for user with mech, oldest first."""
        return [ln for ln in self.log_events("imap.auth")
                if "user=%s " % user in ln and "mech=%s " % mech in ln]

    def capabilities(self, listener):
        r = self.raw(listener)
        if listener == "imap":
            r.send(b"s STARTTLS")
            r.until_tagged(b"s")
            r.s = self.tls_ctx().wrap_socket(r.s, server_hostname="localhost")
        r.send(b"c CAPABILITY")
        caps = r.until_tagged(b"c")[0].split()
        return set(c.decode() for c in caps[2:])


class TestMechanisms(AuthCase):

    def test_capability_per_listener(self):
        trusted = self.capabilities("trusted")
        self.assertLessEqual({"AUTH=SCRAM-SHA-256", "AUTH=PLAIN",
                              "AUTH=LOGIN", "AUTH=CRAM-MD5"}, trusted)
        self.assertNotIn("AUTH=SCRAM-SHA-256-PLUS", trusted)
        self.assertNotIn("AUTH=EXTERNAL", trusted)
        for listener in ("imaps", "imap"):
            caps = self.capabilities(listener)
            self.assertIn("AUTH=SCRAM-SHA-256-PLUS", caps, listener)
            self.assertNotIn("AUTH=EXTERNAL", caps, listener)
        # before STARTTLS on an untrusted listener: nothing to log in with
        r = self.raw("imap")
        self.assertIn(b"LOGINDISABLED", r.greeting)
        self.assertNotIn(b"AUTH=", r.greeting)
        r.send(b"a AUTHENTICATE SCRAM-SHA-256")
        self.assertIn(b"PRIVACYREQUIRED", r.until_tagged(b"a")[-1])

    def test_plus_needs_tls_1_3(self):
        r = Raw(h.tls_connect(self.store.port("imaps"), self.tls_ctx(
            max_version=ssl.TLSVersion.TLSv1_2)))
        self.addCleanup(r.close)
        self.assertIn(b"AUTH=SCRAM-SHA-256 ", r.greeting)
        self.assertNotIn(b"AUTH=SCRAM-SHA-256-PLUS", r.greeting)

    def test_imaplib_login_and_plain(self):
        for listener in ("trusted", "imap", "imaps"):
            m = self.imap(listener)
            typ, _ = m.login(SCRAM_USER, SCRAM_PW)
            self.assertEqual(typ, "OK", listener)
            m = self.imap(listener)
            typ, _ = m.authenticate(
                "PLAIN", lambda _: ("\0%s\0%s" % (SCRAM_USER,
                                                  SCRAM_PW)).encode())
            self.assertEqual(typ, "OK", listener)
            self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertEqual(len(self.auth_log(SCRAM_USER, "PLAIN")), 3)
        self.assertEqual(len(self.auth_log(SCRAM_USER, "IMAP-LOGIN")), 3)

    def test_imaplib_cram_md5(self):
        m = self.imap("imaps")
        typ, _ = m.login_cram_md5(PLAIN_USER, PLAIN_PW)
        self.assertEqual(typ, "OK")
        self.assertEqual(m.select("INBOX")[0], "OK")
        # a SCRAM-stored user has no plaintext secret: refused
        m = self.imap("trusted")
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login_cram_md5(SCRAM_USER, SCRAM_PW)
        self.assertEqual(refusal(e.exception), AUTH_FAILED)

    def test_curl_login_plain_cram(self):
        for mech, user, pw in (("LOGIN", SCRAM_USER, SCRAM_PW),
                               ("PLAIN", SCRAM_USER, SCRAM_PW),
                               ("CRAM-MD5", PLAIN_USER, PLAIN_PW)):
            for listener in ("trusted", "imap"):
                p = self.curl(mech, user, pw, listener)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertRegex(p.stderr, rb"> \S+ AUTHENTICATE " +
                                 mech.encode())
                self.assertRegex(p.stdout, INBOX_LISTED)
                p = self.curl(mech, user, "wrong-pw", listener)
                self.assertEqual(p.returncode, 67, p.stderr)  # denied
        self.assertEqual(len([ln for ln in self.auth_log(SCRAM_USER, "LOGIN")
                              if "status=ok" in ln]), 2)
        self.assertEqual(len([ln for ln in
                              self.auth_log(PLAIN_USER, "CRAM-MD5")
                              if "status=ok" in ln]), 2)

    def test_gsasl_scram(self):
        need(GSASL, "gsasl", "gsasl")
        rc, out = gsasl_connect(self.store.port("trusted"), "SCRAM-SHA-256",
                                SCRAM_USER, SCRAM_PW, "--no-starttls")
        self.assertEqual(rc, 0, out)
        self.assertTrue(any(t.startswith(b"OK [CAPABILITY")
                            for t in tagged(out)), out)
        # over implicit TLS, gsasl's bytes carried by a Python TLS socket
        rc, got = gsasl_over(h.tls_connect(self.store.port("imaps"),
                                           self.tls_ctx()),
                             "SCRAM-SHA-256", SCRAM_USER, SCRAM_PW)
        self.assertEqual(rc, 0, got)
        self.assertIn(b". OK [CAPABILITY", got)
        self.assertEqual(len([ln for ln in
                              self.auth_log(SCRAM_USER, "SCRAM-SHA-256")
                              if "status=ok" in ln]), 2)

    def test_gsasl_scram_plus_over_starttls(self):
        need(GSASL, "gsasl", "gsasl")
        rc, out = gsasl_connect(self.store.port("imap"),
                                "SCRAM-SHA-256-PLUS", SCRAM_USER, SCRAM_PW,
                                "--starttls", "--x509-ca-file=" + self.cert,
                                "--hostname=localhost")
        self.assertEqual(rc, 0, out)
        self.assertIn(b"AUTHENTICATE SCRAM-SHA-256-PLUS", out)
        # the client-first message asked for tls-exporter binding
        first = re.search(rb"AUTHENTICATE SCRAM-SHA-256-PLUS\r?\n\+ ?\r?\n"
                          rb"([A-Za-z0-9+/=]+)", out)
        self.assertIsNotNone(first, out)
        self.assertTrue(base64.b64decode(first.group(1)).startswith(
            b"p=tls-exporter,"))
        self.assertEqual(len([ln for ln in
                              self.auth_log(SCRAM_USER, "SCRAM-SHA-256-PLUS")
                              if "status=ok" in ln]), 1)
        # and a wrong password fails the same way with binding on
        rc, out = gsasl_connect(self.store.port("imap"),
                                "SCRAM-SHA-256-PLUS", SCRAM_USER, "wrong-pw",
                                "--starttls", "--x509-ca-file=" + self.cert,
                                "--hostname=localhost")
        self.assertNotEqual(rc, 0)
        self.assertIn(AUTH_FAILED, tagged(out))

    def test_plus_refused_on_trusted_cleartext(self):
        r = self.raw("trusted")
        r.send(b"a AUTHENTICATE SCRAM-SHA-256-PLUS")
        self.assertEqual(r.until_tagged(b"a")[-1],
                         b"a NO Unsupported authentication mechanism")
        r.send(b"b AUTHENTICATE EXTERNAL =")
        self.assertEqual(r.until_tagged(b"b")[-1],
                         b"b NO Unsupported authentication mechanism")
        # a SCRAM client claiming binding support ("y") is fine where no
        # -PLUS is offered: the exchange goes on to server-first
        r.send(b"c AUTHENTICATE SCRAM-SHA-256 " +
               b64(b"y,,n=%s,r=abcdefghijklmnop" %
                   SCRAM_USER.encode()).encode())
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b"*")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD"))

    def test_channel_binding_is_checked(self):
        # the hand-made client is right: plain SCRAM logs in
        r = self.raw("trusted")
        ln = scram_exchange(r, "SCRAM-SHA-256", b"n,,", SCRAM_USER,
                            SCRAM_PW)
        self.assertTrue(base64.b64decode(ln[2:]).startswith(b"v="), ln)
        r.send(b"")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        # -PLUS with a correct proof but binding data that is not this
        # connection's tls-exporter (Python's ssl cannot export it)
        r = self.raw("imaps")
        ln = scram_exchange(r, "SCRAM-SHA-256-PLUS", b"p=tls-exporter,,",
                            SCRAM_USER, SCRAM_PW, cbind=bytes(32))
        self.assertEqual(ln, b"a " + AUTH_FAILED)
        self.assertIn("error=channel_binding",
                      self.log_events("imap.auth_failed")[-1])

    def test_downgrade_refused_where_plus_offered(self):
        r = self.raw("imaps")
        r.send(b"a AUTHENTICATE SCRAM-SHA-256 " +
               b64(b"y,,n=%s,r=abcdefghijklmnop" %
                   SCRAM_USER.encode()).encode())
        self.assertEqual(r.until_tagged(b"a")[-1], b"a " + AUTH_FAILED)
        self.assertIn("error=channel_binding",
                      self.log_events("imap.auth_failed")[-1])

    def test_same_answer_for_wrong_unknown_and_argon(self):
        answers = {}
        for user, pw in ((SCRAM_USER, "wrong-pw"), (UNKNOWN_USER, "x-pw"),
                         (ARGON_USER, "wrong-pw")):
            m = self.imap()
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m.login(user, pw)
            answers[("LOGIN", user)] = refusal(e.exception)
            m = self.imap()
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m.authenticate("PLAIN", lambda _: ("\0%s\0%s" %
                                                   (user, pw)).encode())
            answers[("PLAIN", user)] = refusal(e.exception)
            m = self.imap()
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m.login_cram_md5(user, pw)
            answers[("CRAM-MD5", user)] = refusal(e.exception)
        self.assertEqual(set(answers.values()), {AUTH_FAILED}, answers)

        need(GSASL, "gsasl", "gsasl")
        scram = {}
        for user, pw in ((SCRAM_USER, "wrong-pw"), (UNKNOWN_USER, "x-pw"),
                         (ARGON_USER, ARGON_PW)):
            rc, out = gsasl_connect(self.store.port("trusted"),
                                    "SCRAM-SHA-256", user, pw,
                                    "--no-starttls")
            self.assertNotEqual(rc, 0, out)
            # every one got a server-first and sent a proof
            self.assertEqual(out.count(b"\n+ "), 2, out)
            scram[user] = tagged(out)[-1]
        self.assertEqual(set(scram.values()), {AUTH_FAILED}, scram)
        # the logs tell them apart, the client cannot
        reasons = {u: self.auth_log(u, "SCRAM-SHA-256")[-1].split(
            "reason=")[1] for u in scram}
        self.assertEqual(reasons, {SCRAM_USER: "password",
                                   UNKNOWN_USER: "unknown_user",
                                   ARGON_USER: "no_password"})
        # ARGON2ID still works with a password mechanism
        self.assertEqual(self.imap().login(ARGON_USER, ARGON_PW)[0], "OK")

    def test_cancel_then_session_continues(self):
        r = self.raw()
        r.send(b"a AUTHENTICATE SCRAM-SHA-256")
        self.assertEqual(r.line(), b"+ ")
        r.send(b"*")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a BAD"))
        # cancelled after server-first
        r.send(b"b AUTHENTICATE SCRAM-SHA-256 " +
               b64(b"n,,n=%s,r=abcdefghijklmnop" %
                   SCRAM_USER.encode()).encode())
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b"*")
        self.assertTrue(r.until_tagged(b"b")[-1].startswith(b"b BAD"))
        # LOGIN cancelled at the password prompt
        r.send(b"c AUTHENTICATE LOGIN")
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b64(SCRAM_USER.encode()).encode())
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b"*")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD"))
        r.send(b"d NOOP")
        self.assertEqual(r.until_tagged(b"d")[-1], b"d OK NOOP completed")
        r.send(b"e AUTHENTICATE PLAIN " +
               b64(b"\0%s\0%s" % (SCRAM_USER.encode(),
                                  SCRAM_PW.encode())).encode())
        self.assertTrue(r.until_tagged(b"e")[-1].startswith(
            b"e OK [CAPABILITY"))

    def test_policy_after_correct_proof(self):
        need(GSASL, "gsasl", "gsasl")
        port = self.store.port("trusted")
        for user, pw, reason in ((NOLOGIN_USER, NOLOGIN_PW, "nologin"),
                                 (FARAWAY_USER, FARAWAY_PW, "network")):
            rc, out = gsasl_connect(port, "SCRAM-SHA-256", user, pw,
                                    "--no-starttls")
            self.assertNotEqual(rc, 0, out)
            # refused where a wrong proof is, before the server signature
            # that would confirm the password
            self.assertEqual(out.count(b"\n+ "), 2, out)
            self.assertNotIn(b"\n+ dj", out)  # base64 of "v="
            self.assertEqual(tagged(out)[-1], AUTH_FAILED)
            self.assertIn("reason=" + reason,
                          self.auth_log(user, "SCRAM-SHA-256")[-1])
            # PLAIN refuses them with the same answer
            m = self.imap()
            with self.assertRaises(imaplib.IMAP4.error) as e:
                m.authenticate("PLAIN", lambda _: ("\0%s\0%s" %
                                                   (user, pw)).encode())
            self.assertEqual(refusal(e.exception), AUTH_FAILED)
            self.assertIn("reason=" + reason,
                          self.auth_log(user, "PLAIN")[-1])
        # allow_nets= that holds 127.0.0.1 lets both in
        rc, out = gsasl_connect(port, "SCRAM-SHA-256", LOCAL_USER, LOCAL_PW,
                                "--no-starttls")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.imap().login(LOCAL_USER, LOCAL_PW)[0], "OK")

    def test_metrics_count_every_mechanism(self):
        need(GSASL, "gsasl", "gsasl")
        before_ok = self.store.metric("ringstore_imap_logins_total", result="ok")
        before_fail = self.store.metric("ringstore_imap_logins_total", result="fail")
        self.imap().login(SCRAM_USER, SCRAM_PW)
        self.imap().login_cram_md5(PLAIN_USER, PLAIN_PW)
        gsasl_connect(self.store.port("trusted"), "SCRAM-SHA-256",
                      SCRAM_USER, SCRAM_PW, "--no-starttls")
        gsasl_connect(self.store.port("trusted"), "SCRAM-SHA-256",
                      SCRAM_USER, "wrong-pw", "--no-starttls")
        with self.assertRaises(imaplib.IMAP4.error):
            self.imap().login_cram_md5(PLAIN_USER, "wrong-pw")
        self.store.wait_metric("ringstore_imap_logins_total",
                               before_ok + 3, result="ok")
        self.store.wait_metric("ringstore_imap_logins_total",
                               before_fail + 2, result="fail")
        # no secret reached the log
        err = self.store.stderr()
        for secret in (SCRAM_PW, PLAIN_PW, "wrong-pw"):
            self.assertNotIn(secret, err)


class TestLegacyOff(AuthCase):

    legacy = False

    def test_cram_md5_not_offered_nor_accepted(self):
        self.assertNotIn("AUTH=CRAM-MD5", self.capabilities("trusted"))
        m = self.imap()
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login_cram_md5(PLAIN_USER, PLAIN_PW)
        self.assertIn("Unsupported authentication mechanism",
                      str(e.exception))
        p = self.curl("CRAM-MD5", PLAIN_USER, PLAIN_PW)
        self.assertNotEqual(p.returncode, 0)
        # the other mechanisms are untouched
        self.assertEqual(self.imap().login(PLAIN_USER, PLAIN_PW)[0], "OK")
        self.assertEqual(self.log_events("auth.legacy"), [])

    def test_legacy_warns_and_needs_plaintext(self):
        cfg = dict(self.store.cfg)
        cfg["auth"] = dict(cfg["auth"], legacy_mechanisms=True,
                           allow_plaintext=False)
        path = os.path.join(self.dir, "legacy.conf")
        with open(path, "w") as f:
            f.write(h.config_text(cfg))
        r = h.run([rs.RINGSTORE, "-t", "-c", path], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("legacy_mechanisms needs auth.allow_plaintext",
                      r.stderr)


class TestScramSecret(unittest.TestCase):
    """auth.scram_secret_file: every instance shows an unknown user the
    same salt; without it each process has its own."""

    def start(self, secret_file=None):
        d = h.temp_dir(self)
        rs.write_passwd(os.path.join(d, "passwd"), {SCRAM_USER: SCRAM_PW})
        cfg = rs.store_config(d, h.free_port(), h.free_port())
        if secret_file:
            cfg["auth"]["scram_secret_file"] = secret_file
        return rs.Ringstore(d, cfg).start(self)

    def salt_of(self, store, user):
        s = socket.create_connection(("127.0.0.1", store.port()), timeout=20)
        r = Raw(s)
        try:
            r.send(b"a AUTHENTICATE SCRAM-SHA-256 " +
                   b64(b"n,,n=%s,r=abcdefghijklmnop" % user).encode())
            ln = r.line()
            self.assertTrue(ln.startswith(b"+ "), ln)
            first = base64.b64decode(ln[2:])
            r.send(b"*")
            r.until_tagged(b"a")
            return dict(kv.split(b"=", 1) for kv in first.split(b","))[b"s"]
        finally:
            r.close()

    def test_same_salt_across_instances(self):
        d = h.temp_dir(self)
        secret = os.path.join(d, "scram.secret")
        with open(secret, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(secret, 0o600)
        a, b = self.start(secret), self.start(secret)
        ghost = b"ghost@example.test"
        self.assertEqual(self.salt_of(a, ghost), self.salt_of(b, ghost))
        self.assertEqual(self.salt_of(a, ghost), self.salt_of(a, ghost))
        self.assertNotEqual(self.salt_of(a, ghost),
                            self.salt_of(a, b"other@example.test"))
        # without the file the secret is per process
        c, e = self.start(), self.start()
        self.assertNotEqual(self.salt_of(c, ghost), self.salt_of(e, ghost))

    def test_bad_secret_file_stops_start_up(self):
        d = h.temp_dir(self)
        short = os.path.join(d, "short.secret")
        with open(short, "w") as f:
            f.write("tooshort\n")
        for path, why in ((short, "shorter than 16 bytes"),
                          (os.path.join(d, "missing"), "No such file")):
            dd = h.temp_dir(self)
            rs.write_passwd(os.path.join(dd, "passwd"),
                            {SCRAM_USER: SCRAM_PW})
            cfg = rs.store_config(dd, h.free_port(), h.free_port())
            cfg["auth"]["scram_secret_file"] = path
            store = rs.Ringstore(dd, cfg)
            with self.assertRaises(AssertionError) as e:
                store.start()
            self.assertIn(why, str(e.exception))
            self.assertIn("auth.scram_secret_file", str(e.exception))


class TestThroughRinggate(unittest.TestCase):
    """ringgate's TLS relay (implicit TLS, ALPN imap) in front of
    ringstore's trusted cleartext listener, as in scripts/demo.sh: the
    client's SASL exchange passes through untouched, the TLS is
    ringgate's, so SCRAM-SHA-256-PLUS is not offered."""

    def setUp(self):
        self.dir = h.temp_dir(self)
        write_users(os.path.join(self.dir, "passwd"))
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port())
        self.store = rs.Ringstore(self.dir, cfg).start(self)
        self.cert, key = h.make_cert(self.dir, "ec", stem="gate")
        relays = [{"name": "imaps",
                   "listen": "127.0.0.1:%d" % h.free_port(), "tls": True,
                   "alpn": "imap",
                   "upstream": "127.0.0.1:%d" % self.store.port()}]
        self.gate = h.Ringgate(self.dir, h.base_config(
            [(self.cert, key)], relays, h.free_port())).start(self)
        self.port = self.gate.port("imaps")

    def tls(self):
        return h.tls_connect(self.port, h.client_context(
            cafiles=[self.cert]))

    def test_capability_has_no_plus(self):
        r = Raw(self.tls())
        self.addCleanup(r.close)
        self.assertIn(b"AUTH=SCRAM-SHA-256 ", r.greeting)
        self.assertNotIn(b"AUTH=SCRAM-SHA-256-PLUS", r.greeting)
        r.send(b"a AUTHENTICATE SCRAM-SHA-256-PLUS")
        self.assertEqual(r.until_tagged(b"a")[-1],
                         b"a NO Unsupported authentication mechanism")

    def test_plain_with_imaplib(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, timeout=20,
                              ssl_context=h.client_context(
                                  cafiles=[self.cert]))
        try:
            typ, _ = m.authenticate("PLAIN", lambda _: (
                "\0%s\0%s" % (SCRAM_USER, SCRAM_PW)).encode())
            self.assertEqual(typ, "OK")
            self.assertEqual(m.select("INBOX")[0], "OK")
        finally:
            m.logout()

    def test_login_with_curl(self):
        need(CURL, "curl", "curl")
        url = "imaps://127.0.0.1:%d/" % self.port
        p = subprocess.run([CURL, "-v", "-sS", "--max-time", "20",
                            "--cacert", self.cert, "-u",
                            "%s:%s" % (SCRAM_USER, SCRAM_PW),
                            "--login-options", "AUTH=LOGIN", url],
                           capture_output=True, timeout=40)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, rb"> \S+ AUTHENTICATE LOGIN")
        self.assertRegex(p.stdout, INBOX_LISTED)

    def test_scram_with_gsasl(self):
        need(GSASL, "gsasl", "gsasl")
        rc, got = gsasl_over(self.tls(), "SCRAM-SHA-256", SCRAM_USER,
                             SCRAM_PW)
        self.assertEqual(rc, 0, got)
        self.assertIn(b". OK [CAPABILITY", got)
        rc, got = gsasl_over(self.tls(), "SCRAM-SHA-256", SCRAM_USER,
                             "wrong-pw")
        self.assertNotEqual(rc, 0, got)
        self.assertIn(b". " + AUTH_FAILED, got)
        log = [ln for ln in self.store.stderr().splitlines()
               if "event=imap.auth " in ln and "mech=SCRAM-SHA-256 " in ln]
        self.assertEqual([("status=ok" in ln) for ln in log], [True, False])


if __name__ == "__main__":
    unittest.main()
