"""test_scaleout.py - two ringgate instances behind one real haproxy, the
set-up docs/scale-out.md describes, with real processes only: Debian's
haproxy (round robin, `send-proxy-v2`), two ringgates sharing a TLS
session ticket key file (`tls.ticket_key_file`), one ringstore behind
both.

Checked: imaplib clients connecting to haproxy from 127.0.0.5 and
127.0.0.6 log in, their logins spread over both instances (each one's
/metrics counts its share), and each instance logs the client's own
address from the PROXY v2 header, not haproxy's. A TLS session made on
instance A resumes on instance B (TLS 1.3 and 1.2, Python ssl's session=,
straight to each instance with a hand-made PROXY header), and not on a
third instance with another key file. An instance killed: haproxy's
health check (TLS, then the greeting: `option tcp-check`, `check-ssl`)
takes it out and every login goes to the other; restarted, it serves
again and still resumes the sessions it made before. The rotation
docs/scale-out.md gives, each step a SIGHUP: a new key appended
everywhere (old tickets still resume, new ones are still made with the
old key), then moved first (tickets made with it resume everywhere, old
ones still resume), then the old key dropped (its tickets give a full
handshake, nothing fails), done with scripts/ticket-keys.sh. The audit
line says resumed=no on A and resumed=yes on B. A broken key file: `ringgate -t`
names it and the fix; a SIGHUP keeps the running keys.
"""

import imaplib
import os
import re
import socket
import ssl
import subprocess
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import MASTER, MASTER_PW, gate_cfg, store_cfg
from test_proxy_protocol import connect_from, v2_header

HAPROXY = h.which("haproxy")
TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "scripts", "ticket-keys.sh")
USERS = {"five@example.test": "pw-five", "six@example.test": "pw-six"}
KEY_LEN = 80  # name 16 + HMAC 32 + AES 32


def new_key():
    return os.urandom(KEY_LEN)


def imaps_port(gate):
    return int(gate.cfg["imap"][1]["listen"].rsplit(":", 1)[1])


class TestScaleOut(unittest.TestCase):

    def setUp(self):
        if HAPROXY is None:
            if h.IN_CI:
                self.fail("haproxy is not installed (scripts/deps.sh)")
            self.skipTest("haproxy not installed")
        self.dir = h.temp_dir(self)
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        dict(USERS, **{MASTER: MASTER_PW}))
        self.store = rs.Ringstore(self.dir,
                                  store_cfg(self.dir, [(self.cert, self.key)]))
        self.store.start(self)
        self.keys = [new_key()]
        self.keyfile = os.path.join(self.dir, "tickets.key")
        self.write_keys(self.keys)
        self.a = self.gate("a", self.keyfile)
        self.b = self.gate("b", self.keyfile)
        self.hport = h.free_port()
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("global\n  maxconn 200\n"
                    "  log stderr format short local0\n"
                    "defaults\n  mode tcp\n  log global\n  option tcplog\n"
                    "  timeout connect 5s\n"
                    "  timeout client 30s\n  timeout server 30s\n"
                    "  option redispatch\n  retries 2\n"
                    "frontend imaps\n  bind 127.0.0.1:%d\n"
                    "  default_backend ringgates\n"
                    "backend ringgates\n  balance roundrobin\n"
                    # docs/scale-out.md's check: TLS, then the greeting
                    "  option tcp-check\n"
                    "  tcp-check connect default\n"
                    "  tcp-check expect rstring ^\\*\\ OK\n"
                    "  default-server send-proxy-v2 check inter 300 "
                    "fall 1 rise 1 check-ssl verify none\n"
                    "  server a 127.0.0.1:%d\n"
                    "  server b 127.0.0.1:%d\n"
                    % (self.hport, imaps_port(self.a), imaps_port(self.b)))
        self.haproxy_log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.addCleanup(self.haproxy_log.close)
        self.haproxy = subprocess.Popen([HAPROXY, "-f", conf, "-db"],
                                        stdout=self.haproxy_log,
                                        stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_haproxy)
        h.wait_for(self.haproxy_up, what="haproxy listening")

    # -- set-up helpers
    def write_keys(self, keys, path=None):
        path = path or self.keyfile
        with open(path + ".tmp", "wb") as f:
            f.write(b"".join(keys))
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)  # atomic, as docs/scale-out.md says

    def gate(self, name, keyfile):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        cfg = gate_cfg(d, [(self.cert, self.key)], self.store.cfg)
        rs.write_passwd(os.path.join(d, "gate.passwd"), USERS)
        cfg["imap"][1].update(proxy_protocol=True, proxy_nets=["127.0.0.1"])
        cfg["tls"]["ticket_key_file"] = keyfile
        return h.Ringgate(d, cfg).start(self)

    def stop_haproxy(self):
        self.haproxy.terminate()
        try:
            self.haproxy.wait(10)
        except subprocess.TimeoutExpired:
            self.haproxy.kill()
            self.haproxy.wait()

    def haproxy_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.hport), 1).close()
            return True
        except OSError:
            return False

    def reload(self, *gates):
        for g in gates:
            n = g.stderr().count("event=reload.done")
            g.reload()
            h.wait_for(lambda: g.stderr().count("event=reload.done") > n,
                       what="reload of %s" % g.dir)

    # -- clients
    def ctx(self, version=ssl.TLSVersion.TLSv1_3):
        return h.client_context(cafiles=[self.cert], min_version=version,
                                max_version=version)

    def session(self, gate, ctx, session=None, src="127.0.0.7", user=None):
        """A TLS connection straight to gate's PROXY listener (the header
        as haproxy would send it), greeting read, LOGIN as user if given,
        LOGOUT done with a clean close_notify. Returns (new session, was
        it resumed)."""
        raw = connect_from("127.0.0.1", imaps_port(gate))
        raw.sendall(v2_header(src, 40000, "127.0.0.1", 993))
        s = ctx.wrap_socket(raw, server_hostname="localhost",
                            session=session)
        try:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"* OK"))
            if user is not None:
                s.sendall(b'l LOGIN "%s" "%s"\r\n' %
                          (user.encode(), USERS[user].encode()))
                line = f.readline()
                while not line.startswith(b"l "):
                    line = f.readline()
                self.assertTrue(line.startswith(b"l OK"), line)
            s.sendall(b"a LOGOUT\r\n")
            while not f.readline().startswith(b"a "):
                pass
            resumed = s.session_reused
            sess = s.session
            f.close()
            try:
                s.unwrap()
            except (OSError, ssl.SSLError):
                pass
            return sess, resumed
        finally:
            s.close()

    def resumes(self, first, second, ctx):
        sess, resumed = self.session(first, ctx)
        self.assertFalse(resumed)
        self.assertIsNotNone(sess)
        return self.session(second, ctx, session=sess)[1]

    def login_via_haproxy(self, src, user):
        # imaplib cannot bind a source address: give it a connected socket
        ctx = h.client_context(cafiles=[self.cert])
        sock = connect_from(src, self.hport)

        class Imap(imaplib.IMAP4_SSL):
            def _create_socket(self, timeout):
                return ctx.wrap_socket(sock, server_hostname="localhost")
        m = Imap("127.0.0.1", self.hport, ssl_context=ctx, timeout=20)
        try:
            typ, _ = m.login(user, USERS[user])
            self.assertEqual(typ, "OK")
            typ, _ = m.select("INBOX")
            self.assertEqual(typ, "OK")
        finally:
            rs.logout_quietly(m)

    def tool(self, cmd, path=None):
        return h.run(["sh", TOOL, cmd, path or self.keyfile]).stdout.split()

    def logins_ok(self, gate):
        return gate.metric("ringgate_imap_logins_total", result="ok") or 0

    # -- tests
    def test_round_robin_with_client_addresses(self):
        # each source twice in a row, so both reach both instances
        for src in ("5", "5", "6", "6") * 2:
            self.login_via_haproxy("127.0.0." + src,
                                   "five@example.test" if src == "5" else
                                   "six@example.test")
        # round robin (haproxy's start-up probe took one turn)
        self.assertEqual(self.logins_ok(self.a) + self.logins_ok(self.b), 8)
        self.assertGreaterEqual(self.logins_ok(self.a), 3)
        self.assertGreaterEqual(self.logins_ok(self.b), 3)
        for g in (self.a, self.b):
            log = g.stderr()
            for src in ("127.0.0.5", "127.0.0.6"):
                self.assertRegex(log, r"event=login\.open proto=imap "
                                 r"listener=imaps client=%s:" %
                                 re.escape(src))
            # no session with haproxy's own address as the client (its
            # health checks, which log in as nobody, have that one)
            self.assertNotRegex(log, r"event=gate\.session .*"
                                r"client=127\.0\.0\.1:")
            g.assert_alive()

    def haproxy_text(self):
        with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def checked(self, gate):
        """haproxy's health check (TLS, then the greeting) reached gate."""
        return re.search(r"event=login\.open proto=imap listener=imaps "
                         r"client=127\.0\.0\.1:", gate.stderr())

    def test_instance_dies(self):
        """B killed: haproxy's check takes B out within inter x fall, then
        every login goes to A. B restarted: it serves again,
        and a session B made before it died resumes on A and on the new
        B (the key is in the file, not in the process)."""
        ctx = self.ctx()
        for g in (self.a, self.b):
            h.wait_for(lambda: self.checked(g), what="a health check")
        sess, _ = self.session(self.b, ctx)
        self.b.killed = True  # not a crash: stop_checked must not mind
        self.b.proc.kill()
        self.b.proc.wait()
        # the killed process's listening socket can outlive it for a
        # moment (io_uring tears down after exit), so a connection may
        # still be taken and cut: clients retry; the check takes B out
        h.wait_for(lambda: "Server ringgates/b is DOWN" in self.haproxy_text(),
                   what="haproxy's check to take B out")
        for i in range(6):
            self.login_via_haproxy("127.0.0.5", "five@example.test")
        self.assertEqual(self.logins_ok(self.a), 6)
        self.b.start()
        self.assertTrue(self.session(self.b, ctx, session=sess)[1])
        self.assertTrue(self.session(self.a, ctx, session=sess)[1])

        def b_serves():
            self.login_via_haproxy("127.0.0.6", "six@example.test")
            return self.logins_ok(self.b) > 0
        h.wait_for(b_serves, timeout=10, interval=0.1,
                   what="haproxy sending logins to B again")
        self.a.assert_alive()

    def test_ticket_from_one_instance_resumes_on_the_other(self):
        other = os.path.join(self.dir, "other.key")
        self.write_keys([new_key()], other)
        c = self.gate("c", other)
        for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = self.ctx(v)
            self.assertTrue(self.resumes(self.a, self.b, ctx), v)
            self.assertTrue(self.resumes(self.b, self.a, ctx), v)
            # another key file: a full handshake, which works
            self.assertFalse(self.resumes(self.a, c, ctx), v)
        # the audit line says so: a full handshake on A, resumed on B
        ctx = self.ctx()
        sess, _ = self.session(self.a, ctx, user="five@example.test")
        self.assertTrue(self.session(self.b, ctx, session=sess,
                                     user="five@example.test")[1])

        def audit(g):
            return [x for x in g.stderr().splitlines()
                    if "event=gate.session" in x]
        h.wait_for(lambda: audit(self.a) and audit(self.b),
                   what="the audit lines")
        self.assertIn(" resumed=no ", audit(self.a)[-1])
        self.assertIn(" resumed=yes ", audit(self.b)[-1])
        self.assertIn(" client=127.0.0.7:", audit(self.b)[-1])

    def test_rotation(self):
        """The three steps of scripts/ticket-keys.sh, each a SIGHUP."""
        ctx = self.ctx()
        old_name = self.tool("list")
        before, _ = self.session(self.a, ctx)  # made with the old key
        # 1. add: the new key appended everywhere decrypts, the old one
        # still encrypts, so a ticket of either instance resumes on both
        self.tool("add")
        names = self.tool("list")
        self.assertEqual(names[0], old_name[0])
        self.assertEqual(len(names), 2)
        self.reload(self.a, self.b)
        self.assertTrue(self.session(self.b, ctx, session=before)[1])
        self.assertTrue(self.resumes(self.a, self.b, ctx))
        during, _ = self.session(self.b, ctx)  # still the old key
        # 2. promote: new tickets are made with the new key and resume on
        # both; tickets made before still resume
        self.tool("promote")
        self.assertEqual(self.tool("list"), names[::-1])
        self.reload(self.a, self.b)
        self.assertTrue(self.resumes(self.b, self.a, ctx))
        self.assertTrue(self.session(self.a, ctx, session=during)[1])
        new, _ = self.session(self.a, ctx)
        # 3. drop (once the old key's tickets have expired): a ticket under
        # it is a full handshake, nothing fails; new ones resume
        self.tool("drop")
        self.assertEqual(self.tool("list"), names[1:])
        self.assertEqual(os.stat(self.keyfile).st_mode & 0o777, 0o600)
        self.reload(self.a, self.b)
        self.assertFalse(self.session(self.b, ctx, session=before)[1])
        self.assertTrue(self.session(self.b, ctx, session=new)[1])
        self.assertTrue(self.resumes(self.a, self.b, ctx))
        for g in (self.a, self.b):
            g.assert_alive()

    def test_tool_and_errors(self):
        """ticket-keys.sh new makes one key and never overwrites; a broken file
        stops `ringgate -t` with the path and the fix."""
        path = os.path.join(self.dir, "made.key")
        self.tool("new", path)
        self.assertEqual(os.path.getsize(path), KEY_LEN)
        self.assertNotEqual(h.run(["sh", TOOL, "new", path],
                                  check=False).returncode, 0)
        with open(path, "ab") as f:
            f.write(b"x")
        self.a.cfg["tls"]["ticket_key_file"] = path
        self.a.write_config()
        r = h.run([h.RINGGATE, "-t", "-c", self.a.conf_path], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(path, r.stderr)
        self.assertIn("openssl rand 80 >", r.stderr)
        # SIGHUP with the broken file: the running keys stay
        n = self.a.stderr().count("event=reload.failed")
        self.a.reload()
        h.wait_for(lambda: self.a.stderr().count("event=reload.failed") > n,
                   what="the reload refused")
        self.assertIn(path, self.a.stderr())
        ctx = self.ctx()
        self.assertTrue(self.resumes(self.a, self.b, ctx))
        self.assertTrue(self.resumes(self.b, self.a, ctx))
        self.a.assert_alive()


if __name__ == "__main__":
    unittest.main()
