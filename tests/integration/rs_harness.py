"""rs_harness.py - ringstore on loopback for the integration tests.

Builds on harness.py: a passwd-file whose passwords are RFC 5803
SCRAM-SHA-256 keys computed here with hashlib (what the demo stores too),
a mail root in the test's temporary directory, and a Ringstore process
class that reuses harness.Ringgate's life cycle (start, /healthz wait,
stop with sanitizer and crash checks) with ringstore's binary and config,
and StoreTestCase: a store per test with the demo user and the imaplib /
raw socket helpers the session-level tests share.
"""

import base64
import hashlib
import hmac
import imaplib
import os
import socket
import threading
import unittest

import harness as h

RINGSTORE = os.path.join(h.BUILD_DIR, "backend", "ringstore")


def scram_hash(password, salt=None, iterations=4096):
    """'{SCRAM-SHA-256}SCRAM-SHA-256$iter:salt$StoredKey:ServerKey'."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "{SCRAM-SHA-256}SCRAM-SHA-256$%d:%s$%s:%s" % (
        iterations, b64(salt), b64(stored), b64(server))


def write_passwd(path, users):
    """users: {name: password}."""
    with open(path, "w") as f:
        for user, pw in users.items():
            f.write("%s:%s::::::\n" % (user, scram_hash(pw)))


def store_config(directory, imap_port, admin_port, certs=(), workers=2,
                 **overrides):
    """A ringstore config dict: one IMAP listener "imap" (STARTTLS when
    certs are given), the passwd-file and mail root in directory."""
    cfg = {
        "daemon": {"workers": workers, "log_level": "info",
                   "drain_timeout": "2s"},
        "admin": {"listen": "127.0.0.1:%d" % admin_port},
        "limits": {"handshake_timeout": "5s", "idle_timeout": "5m",
                   "line_max_login": "8k", "line_max": "64k",
                   "bad_commands": 5, "append_max": "10M"},
        "auth": {"passwd_file": os.path.join(directory, "passwd"),
                 "default_scheme": "SCRAM-SHA-256"},
        "storage": {"mail_root": os.path.join(directory, "mail"),
                    "threads": 2},
        "imap": [{"name": "imap", "listen": "127.0.0.1:%d" % imap_port,
                  "starttls": bool(certs), "trusted": not certs}],
    }
    if certs:
        cfg["tls"] = {"certificates": [{"cert": c, "key": k}
                                       for c, k in certs]}
    return h.merge_config(cfg, overrides)


def tls_store_config(testcase, **kw):
    """store_config() for a ringstore in testcase.dir with a fresh EC
    server certificate (testcase.cert, testcase.key) and ephemeral IMAP
    and admin ports; kw as for store_config()."""
    testcase.cert, testcase.key = h.make_cert(testcase.dir, "ec",
                                              stem="server")
    return store_config(testcase.dir, h.free_port(), h.free_port(),
                        certs=[(testcase.cert, testcase.key)], **kw)


def logout_quietly(m):
    """LOGOUT an imaplib session if it is still there (test cleanups)."""
    try:
        m.logout()
    except Exception:
        pass


def imap_login(testcase, port, user, password, timeout=20):
    """An imaplib session on 127.0.0.1:port logged in as user, logged out
    when testcase ends."""
    m = imaplib.IMAP4("127.0.0.1", port, timeout=timeout)
    testcase.addCleanup(logout_quietly, m)
    m.login(user, password)
    return m


def raw_connect(testcase, port, timeout=h.IO_TIMEOUT, greeting=b"* OK"):
    """A plain socket to 127.0.0.1:port and a line reader over it, both
    closed when testcase ends. The server's first line is read and must
    start with greeting (None: nothing is read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    testcase.addCleanup(s.close)
    f = s.makefile("rb")
    testcase.addCleanup(f.close)
    if greeting is not None:
        line = f.readline()
        testcase.assertTrue(line.startswith(greeting), line)
    return s, f


def read_tagged(testcase, f, tag):
    """The lines read from f up to and including tag's tagged answer."""
    lines = []
    while True:
        line = f.readline()
        testcase.assertTrue(line, "connection closed; got %r" % lines)
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def kill_during(store, workers, enough, timeout, what):
    """Start one thread per worker (each called with a stop event), SIGKILL
    store once enough() is true, then set stop and join the threads.
    Returns the threads; store is left dead (killed set, so stop() does
    not count it as a crash)."""
    stop = threading.Event()
    threads = [threading.Thread(target=w, args=(stop,), daemon=True)
               for w in workers]
    for t in threads:
        t.start()
    try:
        h.wait_for(enough, timeout=timeout, what=what)
        store.proc.kill()
        store.killed = True
        store.proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return threads


class Ringstore(h.Ringgate):
    """A ringstore process; same life cycle as harness.Ringgate."""

    def __init__(self, directory, cfg):
        super().__init__(directory, cfg, binary=RINGSTORE)
        self.conf_path = os.path.join(directory, "ringstore.conf")
        self.stderr_path = os.path.join(directory, "ringstore.stderr")

    def port(self, name="imap"):
        for r in self.cfg["imap"]:
            if r["name"] == name:
                return int(r["listen"].rsplit(":", 1)[1])
        raise KeyError(name)


DEMO_USER, DEMO_PASSWORD = "demo@example.test", "ringgate-demo-pw"


class StoreTestCase(unittest.TestCase):
    """A ringstore per test with one user (DEMO_USER) on a trusted
    listener, and the client helpers the session-level tests share.
    Subclasses may set `limits` (merged into the config's limits)."""

    limits = {}

    def setUp(self):
        self.dir = h.temp_dir(self)
        write_passwd(os.path.join(self.dir, "passwd"),
                     {DEMO_USER: DEMO_PASSWORD})
        cfg = store_config(self.dir, h.free_port(), h.free_port(),
                           limits=self.limits)
        self.store = Ringstore(self.dir, cfg).start(self)
        self.maildir = os.path.join(self.dir, "mail", "example.test",
                                    "demo", "Maildir")

    def login(self, timeout=60):
        """A logged-in imaplib session, logged out at cleanup."""
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=timeout)
        self.addCleanup(logout_quietly, m)
        m.login(DEMO_USER, DEMO_PASSWORD)
        return m

    def raw(self, login=False):
        """A socket after the greeting (and LOGIN if asked) and its line
        reader, both closed at cleanup."""
        s, f = raw_connect(self, self.store.port())
        if login:
            s.sendall(b"l LOGIN %s %s\r\n" % (DEMO_USER.encode(),
                                               DEMO_PASSWORD.encode()))
            self.assertTrue(self.tagged(f, b"l").startswith(b"l OK"))
        return s, f

    def tagged(self, f, tag, untagged=None):
        """Read to tag's line and return it; untagged lines go to the
        list if one is given."""
        while True:
            line = f.readline()
            self.assertTrue(line, "connection closed")
            if line.startswith(tag + b" "):
                return line
            if untagged is not None:
                untagged.append(line)

    def ok(self, result):
        """An imaplib result that must be OK: its data."""
        typ, data = result
        self.assertEqual(typ, "OK", data)
        return data

    def no(self, result, code=None):
        """An imaplib result that must be NO (with [code] if given)."""
        typ, data = result
        self.assertEqual(typ, "NO", data)
        if code is not None:
            self.assertIn(b"[" + code + b"]", data[0])
        return data
