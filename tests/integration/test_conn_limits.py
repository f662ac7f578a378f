"""test_conn_limits.py - session caps and the descriptor reserve
(core/conn_limit.c), and accept failures paused and logged once per
episode (core/loop.c), with real daemons and real clients.

TestFdReserve: ringgate in front of ringstore under RLIMIT_NOFILE 256
(the harness sets it in the child); 300 silent TLS connections flood the
imaps listener: no accept ever fails (the cap is (256 - fd_reserve) / 2),
the oldest silent connections are cut to make room, a good user logs in
through ringgate with imaplib over TLS while the flood holds, the log has
summary lines, not one per connection, and /metrics counts it all.
TestEmfile: ringstore with a reserve too small for its own descriptors
(RLIMIT_NOFILE 64, fd_reserve 16, one worker) so accept() does fail with
EMFILE: one accept.paused line and one accept.resumed line with the count
of refused accepts, the counters, and the listener accepting again by
itself once the flood is gone.
TestSessionCaps: per listener max_sessions (IMAP, POP3, submission and
implicit TLS): the connection over it gets `* BYE [UNAVAILABLE]`, `-ERR
[SYS/TEMP]`, `421 4.7.0`; limits.max_sessions across listeners; a slot
given back is used again. TestStoreCaps: ringstore's IMAP and LMTP
(`421 4.3.2`) listeners. TestConfig: -t names a bad value's line and
tells the cap.
"""

import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness as h
import rs_harness as rs
import test_gate_front as gf

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD


def tmpdir(testcase):
    d = tempfile.mkdtemp(prefix="rg-limits-")
    testcase.addCleanup(shutil.rmtree, d, True)
    return d


def flood(port, n):
    """n silent TCP connections (they never send a byte)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def closed_by_peer(s):
    """The server closed s (EOF or reset) - without blocking."""
    s.settimeout(0)  # a timeout would poll before the recv
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def hang_up(s):
    """Close s for real (a makefile() of it would keep it open)."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def log_count(proc, event):
    return len(re.findall(r"\b%s\b" % re.escape(event), proc.stderr()))


def metric_sum(proc, name, **labels):
    """proc's metric name (without the daemon's prefix), summed over the
    samples whose labels include these."""
    prefix = os.path.basename(proc.binary) + "_"
    return proc.metric(prefix + name, **labels)


class TestFdReserve(unittest.TestCase):
    NOFILE = 256
    FLOOD = 300

    def setUp(self):
        self.dir = tmpdir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: PASSWORD, gf.MASTER: gf.MASTER_PW})
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        store = rs.Ringstore(self.dir, gf.store_cfg(self.dir,
                                                     [(self.cert, key)]))
        gf.start_proc(store, self)
        gate = h.Ringgate(self.dir, gf.gate_cfg(self.dir, [(self.cert, key)],
                                                store.cfg))
        gate.rlimit_nofile = self.NOFILE
        self.gate = gf.start_proc(gate, self)
        self.port = gf.port_of(gate.cfg, "imap", "imaps")

    def login(self):
        ctx = h.client_context(cafiles=[self.cert])
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx,
                              timeout=20)
        try:
            self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
            self.assertEqual(m.select("INBOX")[0], "OK")
        finally:
            rs.logout_quietly(m)

    def test_flood_of_silent_connections(self):
        g = self.gate
        cap = (self.NOFILE - 64) // 2  # fd_reserve's default, 2 a session
        self.assertEqual(metric_sum(g, "open_files_limit"), self.NOFILE)
        self.assertEqual(metric_sum(g, "connections_fd_cap"), cap)
        self.login()  # before the flood
        socks = flood(self.port, self.FLOOD)
        self.addCleanup(close_all, socks)
        self.assertGreater(len(socks), cap)
        # the oldest silent ones are cut to make room for the new
        h.wait_for(lambda: metric_sum(g, "sessions_evicted_total",
                                      listener="imaps") >=
                   len(socks) - cap, what="evictions")
        # a good user logs in through ringgate while the flood holds
        self.login()
        self.login()
        h.wait_for(lambda: sum(closed_by_peer(s) for s in socks) >=
                   len(socks) - cap, what="surplus closed")
        alive = [s for s in socks if not closed_by_peer(s)]
        self.assertLessEqual(len(alive), cap)
        # the newest were kept: the surplus was the oldest
        self.assertFalse(closed_by_peer(socks[-1]))
        # no accept ever failed: the reserve held
        self.assertEqual(metric_sum(g, "accept_errors_total"), 0,
                         "\n".join(l for l in g.stderr().splitlines()
                                   if "accept." in l))
        self.assertEqual(log_count(g, "accept.paused"), 0)
        # a summary line now and then, not a line per connection
        lines = log_count(g, "sessions.limit")
        self.assertGreaterEqual(lines, 1)
        self.assertLessEqual(lines, 4)  # per worker per 10 s
        self.assertEqual(metric_sum(g, "connections_closed_total",
                                    listener="imaps", reason="limit"),
                         metric_sum(g, "sessions_evicted_total",
                                    listener="imaps"))
        # the flood ends: everything is as before
        close_all(socks)
        h.wait_for(lambda: metric_sum(g, "connections_open",
                                      listener="imaps") == 0,
                   what="flood gone")
        self.login()
        g.assert_alive()


class TestEmfile(unittest.TestCase):
    """A reserve too small for ringstore's own descriptors: accept()
    itself fails, and the listener pauses and resumes by itself."""

    NOFILE = 64

    def setUp(self):
        self.dir = tmpdir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              workers=1)
        cfg["limits"]["fd_reserve"] = 0  # no reserve: accept() fails
        cfg["storage"]["threads"] = 1
        self.store = rs.Ringstore(self.dir, cfg)
        self.store.rlimit_nofile = self.NOFILE
        gf.start_proc(self.store, self)
        self.port = self.store.port("imap")

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
        try:
            self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
        finally:
            rs.logout_quietly(m)

    def test_accept_pauses_once_per_episode(self):
        st = self.store
        socks = flood(self.port, self.NOFILE + 10)
        self.addCleanup(close_all, socks)
        # /metrics cannot answer now (the admin listener is out of
        # descriptors too): the log tells
        h.wait_for(lambda: log_count(st, "accept.paused") >= 1,
                   what="accept.paused")
        time.sleep(1.6)  # backing off: 50, 100, 200, 400, 800 ms...
        paused = re.findall(r"event=accept\.paused listener=imap .*",
                            st.stderr())
        self.assertEqual(len(paused), 1, paused)
        self.assertIn("Too many open files", paused[0])
        close_all(socks)
        # the listener accepts again by itself: the next client is served
        self.login()
        # the episode ends once accepts went a second without a failure
        h.wait_for(lambda: log_count(st, "accept.resumed") >= 1,
                   what="accept.resumed")
        resumed = re.findall(r"event=accept\.resumed listener=imap .*"
                             r"refused_accepts=(\d+)", st.stderr())
        self.assertEqual(len(resumed), 1)
        refused = int(resumed[0])
        self.assertGreaterEqual(refused, 3)  # one line, many refusals
        self.assertEqual(metric_sum(st, "accept_errors_total",
                                    listener="imap"), refused)
        self.assertEqual(metric_sum(st, "accept_pauses_total",
                                    listener="imap"), 1)
        # sessions already running were not touched
        self.assertEqual(metric_sum(st, "connections_closed_total",
                                    listener="imap", reason="limit"), 0)
        self.assertEqual(len(re.findall(r"event=accept\.paused "
                                        r"listener=imap ", st.stderr())), 1)
        st.assert_alive()


class TestSessionCaps(unittest.TestCase):
    def setUp(self):
        self.dir = tmpdir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: PASSWORD, gf.MASTER: gf.MASTER_PW})
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        store = rs.Ringstore(self.dir, gf.store_cfg(self.dir,
                                                     [(self.cert, key)]))
        gf.start_proc(store, self)
        self.store_cfg = store.cfg
        self.key = key

    def start_gate(self, listener_max=None, daemon_max=None):
        cfg = gf.gate_cfg(self.dir, [(self.cert, self.key)], self.store_cfg)
        for sec in ("imap", "pop3", "submission"):
            for lst in cfg[sec]:
                if listener_max is not None:
                    lst["max_sessions"] = listener_max
        if daemon_max is not None:
            cfg["limits"]["max_sessions"] = daemon_max
        self.gate = gf.start_proc(h.Ringgate(self.dir, cfg), self)
        return self.gate

    def port(self, name):
        for sec in ("imap", "pop3", "submission"):
            for lst in self.gate.cfg[sec]:
                if lst["name"] == name:
                    return int(lst["listen"].rsplit(":", 1)[1])
        raise KeyError(name)

    def greet(self, name, tls=False):
        """Connect to listener name; (socket, first line)."""
        s = socket.create_connection(("127.0.0.1", self.port(name)), 10)
        if tls:
            ctx = h.client_context(cafiles=[self.cert])
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.addCleanup(s.close)
        f = s.makefile("rb")
        return s, f, f.readline().decode()

    def assert_closed(self, f):
        try:
            self.assertEqual(f.read(), b"")
        except (ConnectionResetError, ssl.SSLError):
            pass

    def test_listener_max(self):
        g = self.start_gate(listener_max=2)
        words = {"imap": "* OK", "pop3": "+OK", "submission": "220 "}
        refusal = {"imap": "* BYE [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]",
                   "submission": "421 4.7.0"}
        for name in ("imap", "pop3", "submission"):
            held = [self.greet(name) for _ in range(2)]
            for _, _, line in held:
                self.assertTrue(line.startswith(words[name]), line)
            _, f, line = self.greet(name)
            self.assertTrue(line.startswith(refusal[name]), line)
            self.assertIn("ry again later", line)
            self.assert_closed(f)
            self.assertEqual(metric_sum(g, "sessions_refused_total",
                                      listener=name,
                                      reason="listener_max"), 1)
            # a slot given back is used again
            hang_up(held[0][0])
            h.wait_for(lambda: metric_sum(g, "connections_open",
                                        listener=name) <= 1,
                       what="slot back")
            _, _, line = self.greet(name)
            self.assertTrue(line.startswith(words[name]), line)
        # implicit TLS: the refusal comes after the handshake
        held = [self.greet("imaps", tls=True) for _ in range(2)]
        _, f, line = self.greet("imaps", tls=True)
        self.assertTrue(line.startswith("* BYE [UNAVAILABLE]"), line)
        self.assert_closed(f)
        _, f, line = self.greet("submissions", tls=True)
        self.assertTrue(line.startswith("220 "), line)  # its own count
        g.assert_alive()

    def test_daemon_max(self):
        g = self.start_gate(daemon_max=3)
        self.assertEqual(metric_sum(g, "sessions_max"), 3)
        held = [self.greet("imap"), self.greet("pop3"),
                self.greet("submission")]
        self.assertTrue(all(line[:1] in "*+2" for _, _, line in held))
        _, f, line = self.greet("pop3")
        self.assertTrue(line.startswith("-ERR [SYS/TEMP]"), line)
        self.assert_closed(f)
        _, f, line = self.greet("imap")
        self.assertTrue(line.startswith("* BYE [UNAVAILABLE]"), line)
        self.assertEqual(metric_sum(g, "sessions_refused_total",
                                    reason="daemon_max"), 2)
        self.assertEqual(metric_sum(g, "sessions_admitted"), 3)
        hang_up(held[1][0])
        h.wait_for(lambda: metric_sum(g, "sessions_admitted") == 2,
                   what="slot back")
        ctx = h.client_context(cafiles=[self.cert])
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port("imaps"),
                              ssl_context=ctx, timeout=20)
        try:
            self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
        finally:
            rs.logout_quietly(m)
        g.assert_alive()


class TestStoreCaps(unittest.TestCase):
    """ringstore's listeners take max_sessions too; LMTP's answer."""

    def test_imap_and_lmtp(self):
        d = tmpdir(self)
        rs.write_passwd(os.path.join(d, "passwd"), {USER: PASSWORD})
        lmtp_port = h.free_port()
        cfg = rs.store_config(d, h.free_port(), h.free_port(), lmtp=[{
            "name": "lmtp", "trusted": True, "max_sessions": 1,
            "listen": "127.0.0.1:%d" % lmtp_port}])
        cfg["imap"][0]["max_sessions"] = 1
        st = gf.start_proc(rs.Ringstore(d, cfg), self)
        for port, ok, refusal in ((st.port("imap"), "* OK", "* BYE "
                                   "[UNAVAILABLE]"),
                                  (lmtp_port, "220 ", "421 4.3.2")):
            a = socket.create_connection(("127.0.0.1", port), 10)
            self.addCleanup(a.close)
            self.assertTrue(a.makefile("rb").readline().decode()
                            .startswith(ok))
            b = socket.create_connection(("127.0.0.1", port), 10)
            self.addCleanup(b.close)
            f = b.makefile("rb")
            self.assertTrue(f.readline().decode().startswith(refusal))
            self.assertEqual(f.read(), b"")
        self.assertEqual(metric_sum(st, "sessions_refused_total",
                                    reason="listener_max"), 2)
        st.assert_alive()


class TestConfig(unittest.TestCase):
    def test_bad_values_named(self):
        d = tmpdir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        for field, value in (("fd_reserve", -3), ("max_sessions", -1)):
            cfg = h.base_config([(cert, key)], [{
                "name": "r", "listen": "127.0.0.1:%d" % h.free_port(),
                "upstream": "127.0.0.1:%d" % h.free_port()}],
                h.free_port())
            cfg["limits"][field] = value
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write(h.config_text(cfg))
            r = subprocess.run([h.RINGGATE, "-t", "-c", path],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            line = h.line_of(h.config_text(cfg), "%s = " % field)
            self.assertIn("bad.conf:%d" % line, r.stderr)
            self.assertIn(field, r.stderr)

    def test_cap_told(self):
        """-t says the cap the config gives under this process's hard
        limit, and warns (without failing) when the reserve eats it."""
        import resource
        d = tmpdir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        cfg = h.base_config([(cert, key)], [{
            "name": "r", "listen": "127.0.0.1:%d" % h.free_port(),
            "upstream": "127.0.0.1:%d" % h.free_port()}], h.free_port())
        cfg["limits"]["max_sessions"] = 50
        path = os.path.join(d, "ok.conf")
        with open(path, "w") as f:
            f.write(h.config_text(cfg))

        def limit(n):
            return lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                              (n, n))
        r = subprocess.run([h.RINGGATE, "-t", "-c", path],
                           capture_output=True, text=True, timeout=30,
                           preexec_fn=limit(256))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("at most 50 sessions at once (RLIMIT_NOFILE 256 here "
                      "- fd_reserve 64) / 2", r.stdout)
        r = subprocess.run([h.RINGGATE, "-t", "-c", path],
                           capture_output=True, text=True, timeout=30,
                           preexec_fn=limit(80))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: RLIMIT_NOFILE 80 leaves fewer than 16",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()
