"""test_throttle.py - badguy throttling through real ringgates sharing a
real redis-server, one real ringstore behind them.

Clients speak raw IMAP, POP3 and SMTP over trusted plaintext listeners
from chosen loopback source addresses (127.0.0.x), so each test is its
own set of "attackers" and "users". Covered: failed logins through
instance A block that address on instance B while a good user from
another address keeps logging in, and the block expires; concurrency,
connection-rate and per-service limits answer with the protocol's
temporary error; the allow-list is never throttled; Redis killed ->
fail-open on local counters, backend_up 0, restarted -> shared counting
resumes without restarting ringgate; Redis SIGSTOPped behaves like down
within the timeout; fail_closed refuses; 1,000 connections held in
tarpit delays do not hold up another client's good login; the admin's
view and unblock (through ringgate-ctl); IPv6 and its /64 and /48;
POP/IMAP-before-SMTP across two instances. Skips without
redis-server.
"""

import base64
import json
import os
import select
import shutil
import signal
import socket
import tempfile
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import (BOB, BOB_PW, MASTER, MASTER_PW, PASSWORD,
                             USER, fresh_port, gate_cfg, start_proc,
                             store_cfg)
from test_gate_route_redis import REDIS, Redis

TIMEOUT = 20
CTL = os.path.join(os.environ.get("RG_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."),
    "proxy", "ringgate-ctl")


def trusted(name):
    return {"name": name, "listen": "127.0.0.1:%d" % fresh_port(),
            "tls": False, "starttls": False, "trusted": True,
            "trusted_nets": ["127.0.0.0/8"]}


def port(gate, section):
    """The first listener of section, or the one named "imap_lb"."""
    if section == "imap_lb":
        for l in gate.cfg["imap"]:
            if l["name"] == "imap_lb":
                return int(l["listen"].rsplit(":", 1)[1])
    return int(gate.cfg[section][0]["listen"].rsplit(":", 1)[1])


def connect(gate, section, src):
    s = socket.create_connection(("127.0.0.1", port(gate, section)),
                                 TIMEOUT, source_address=(src, 0))
    return s, s.makefile("rb")


def imap_login(gate, src, user, password):
    """'OK', 'NO', or the first line when not greeted ('* BYE ...')."""
    s, f = connect(gate, "imap", src)
    try:
        first = f.readline().decode().strip()
        if not first.startswith("* OK"):
            return first
        s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(),
                                               password.encode()))
        while True:
            line = f.readline().decode()
            if not line:
                return "closed"
            if line.startswith("a "):
                break
        if line.startswith("a OK"):
            s.sendall(b"b LOGOUT\r\n")
            return "OK"
        return line.split()[1]
    finally:
        s.close()


def greeting(gate, section, src):
    """The first line a new connection hears, and the open socket."""
    s, f = connect(gate, section, src)
    return f.readline().decode().strip(), s


def gate_dir(base, name):
    d = os.path.join(base, name)
    os.mkdir(d)
    return d


def throttle_cfg(redis_port, **over):
    t = {
        "redis": "127.0.0.1:%d" % redis_port,
        "timeout": "300ms",
        "retry": "300ms",
        "allow_nets": ["127.0.0.200"],
        "imap": {"delay": "50ms", "delay_max": "200ms", "block_fails": 3,
                 "block_time": "5s", "fail_window": "1m", "conns_ip": 5,
                 "rate_ip": 1000, "rate_net": 10000, "conns_net": 1000},
        "pop3": {"rate_ip": 4, "rate_interval": "30s", "rate_net": 1000,
                 "delay": "50ms", "delay_max": "200ms", "block_fails": 3,
                 "block_time": "5s"},
        "submission": {"conns_ip": 2, "rate_ip": 1000, "rate_net": 10000,
                       "delay": "50ms", "delay_max": "200ms",
                       "block_fails": 3, "block_time": "5s"},
    }
    t.update(over)
    return t


@unittest.skipUnless(REDIS or h.IN_CI, "redis-server not installed")
class TestThrottle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rg-throttle-")
        cls.redis = Redis(cls.dir)
        cls.redis.start()
        cls.cert, cls.key = h.make_cert(cls.dir, "ec", stem="server")
        sd = gate_dir(cls.dir, "store")
        rs.write_passwd(os.path.join(sd, "passwd"),
                        {USER: PASSWORD, BOB: BOB_PW, MASTER: MASTER_PW})
        cls.store = rs.Ringstore(sd, store_cfg(sd, [(cls.cert, cls.key)]))
        cls.store.start()
        cls.gates = []
        cls.a = cls.make_gate("a", throttle_cfg(cls.redis.port))
        cls.b = cls.make_gate("b", throttle_cfg(cls.redis.port))

    @classmethod
    def make_gate(cls, name, throttle):
        d = gate_dir(cls.dir, name)
        cfg = gate_cfg(d, [(cls.cert, cls.key)], cls.store.cfg)
        cfg["imap"] = [trusted("imap"),
                       dict(trusted("imap_lb"), proxy_protocol=True,
                            proxy_nets=["127.0.0.61"],
                            trusted_nets=["127.0.0.0/8", "192.0.2.0/24"])]
        cfg["pop3"] = [trusted("pop3")]
        cfg["submission"] = [trusted("submission")]
        cfg["throttle"] = throttle
        g = h.Ringgate(d, cfg)
        start_proc(g)
        cls.gates.append(g)
        return g

    @classmethod
    def tearDownClass(cls):
        errors = []
        for p in cls.gates + [cls.store]:
            try:
                p.stop_checked()
            except AssertionError as e:
                errors.append(str(e))
        cls.redis.stop()
        shutil.rmtree(cls.dir, True)
        if errors:
            raise AssertionError("\n".join(errors))

    def redis_back(self):
        if self.redis.proc is None or self.redis.proc.poll() is not None:
            self.redis.start()
        for g in (self.a, self.b):
            g.wait_metric("ringgate_throttle_backend_up", 1, timeout=15)

    def setUp(self):
        self.redis_back()

    def decisions(self, gate, rule, result):
        return gate.metric("ringgate_throttle_decisions_total", rule=rule,
                           result=result) or 0

    # ------------------------------------------------------------ logins

    def test_block_through_a_holds_on_b_and_expires(self):
        for _ in range(3):
            self.assertEqual(imap_login(self.a, "127.0.0.11", USER, "bad"),
                             "NO")
        # the right password from the blocked address: a wrong one's
        # answer, on the other instance
        self.assertEqual(imap_login(self.b, "127.0.0.11", USER, PASSWORD),
                         "NO")
        self.assertGreaterEqual(self.decisions(self.b, "block", "refused"),
                                1)
        # B remembers the block: the next password is not even hashed
        self.assertEqual(imap_login(self.b, "127.0.0.11", USER, PASSWORD),
                         "NO")
        self.assertGreaterEqual(self.decisions(self.b, "block",
                                               "not_verified"), 1)
        # a good user elsewhere is not touched
        self.assertEqual(imap_login(self.b, "127.0.0.12", BOB, BOB_PW), "OK")
        # the block ends by itself (block_time 5s)
        h.wait_for(lambda: imap_login(self.b, "127.0.0.11", USER,
                                      PASSWORD) == "OK",
                   timeout=30, interval=0.5, what="block expired")
        self.assertGreaterEqual(self.decisions(self.a, "failed_login",
                                               "counted"), 3)

    def test_every_login_path_counts_and_blocks(self):
        """POP3 USER/PASS, SMTP AUTH PLAIN and IMAP AUTHENTICATE go
        through the same verdict; a block holds across the services."""
        s, f = connect(self.a, "pop3", "127.0.0.101")
        f.readline()
        for _ in range(3):
            s.sendall(b"USER %s\r\nPASS bad\r\n" % USER.encode())
            self.assertTrue(f.readline().startswith(b"+OK"))
            self.assertTrue(f.readline().startswith(b"-ERR"))
        s.close()
        self.assertEqual(imap_login(self.b, "127.0.0.101", USER, PASSWORD),
                         "NO")

        def plain(user, password):
            return base64.b64encode(b"\0%s\0%s" % (user.encode(),
                                                   password.encode()))
        s, f = connect(self.b, "submission", "127.0.0.102")
        f.readline()
        s.sendall(b"EHLO x\r\n")
        line = f.readline()
        while line.startswith(b"250-"):
            line = f.readline()
        for _ in range(3):
            s.sendall(b"AUTH PLAIN %s\r\n" % plain(USER, "bad"))
            self.assertTrue(f.readline().startswith(b"535"))
        s.close()
        s, f = connect(self.a, "imap", "127.0.0.102")
        f.readline()
        s.sendall(b"a AUTHENTICATE PLAIN %s\r\n" % plain(USER, PASSWORD))
        line = f.readline()
        s.close()
        self.assertTrue(line.startswith(b"a NO"), line)
        # the same, from a clean address
        s, f = connect(self.a, "imap", "127.0.0.103")
        f.readline()
        s.sendall(b"a AUTHENTICATE PLAIN %s\r\n" % plain(USER, PASSWORD))
        line = f.readline()
        s.close()
        self.assertTrue(line.startswith(b"a OK"), line)

    def test_spraying_never_locks_out_a_clean_source(self):
        for i in range(6):
            src = "127.0.9.%d" % (i + 1)
            self.assertEqual(imap_login(self.a, src, BOB, "guess%d" % i),
                             "NO")
        self.assertEqual(imap_login(self.b, "127.0.8.1", BOB, BOB_PW), "OK")

    # --------------------------------------------------------- admission

    def test_concurrency_shared_and_per_service_limits(self):
        held = []
        try:
            # imap: 5 per address, counted across both instances
            for gate in (self.a, self.a, self.a, self.b, self.b):
                line, s = greeting(gate, "imap", "127.0.0.21")
                held.append(s)
                self.assertTrue(line.startswith("* OK"), line)
            line, s = greeting(self.b, "imap", "127.0.0.21")
            held.append(s)
            self.assertTrue(line.startswith("* BYE [UNAVAILABLE]"), line)
            self.assertEqual(s.recv(64), b"")  # and closed
            # submission: 2 per address
            for _ in range(2):
                line, s = greeting(self.a, "submission", "127.0.0.23")
                held.append(s)
                self.assertTrue(line.startswith("220 "), line)
            line, s = greeting(self.a, "submission", "127.0.0.23")
            held.append(s)
            self.assertTrue(line.startswith("421 4.7.0"), line)
        finally:
            for s in held:
                s.close()
        self.assertGreaterEqual(self.decisions(self.b, "conns_ip",
                                               "refused"), 1)
        # the holds went with the connections
        def room():
            line, s = greeting(self.a, "imap", "127.0.0.21")
            s.close()
            return line.startswith("* OK")
        h.wait_for(room, timeout=10, what="imap room again")

    def test_connection_rate_and_allow_list(self):
        for i in range(4):
            line, s = greeting(self.a if i % 2 else self.b, "pop3",
                               "127.0.0.22")
            s.close()
            self.assertTrue(line.startswith("+OK"), line)
        line, s = greeting(self.a, "pop3", "127.0.0.22")
        s.close()
        self.assertTrue(line.startswith("-ERR [SYS/TEMP]"), line)
        self.assertGreaterEqual(self.decisions(self.a, "rate_ip",
                                               "refused"), 1)
        # the allow-list is never throttled, however many
        held = []
        try:
            for _ in range(12):
                line, s = greeting(self.a, "pop3", "127.0.0.200")
                held.append(s)
                self.assertTrue(line.startswith("+OK"), line)
        finally:
            for s in held:
                s.close()
        for _ in range(6):
            self.assertEqual(imap_login(self.a, "127.0.0.200", USER, "x"),
                             "NO")
        self.assertEqual(imap_login(self.a, "127.0.0.200", USER, PASSWORD),
                         "OK")
        self.assertGreaterEqual(self.decisions(self.a, "allow_nets",
                                               "admitted"), 12)

    # ---------------------------------------------------- Redis failures

    def test_redis_killed_fail_open_then_restarted(self):
        self.redis.stop()
        self.a.wait_metric("ringgate_throttle_backend_up", 0, timeout=15)
        # fail-open: a good login works at once
        self.assertEqual(imap_login(self.a, "127.0.0.31", USER, PASSWORD),
                         "OK")
        # and the local counters still block on this instance
        for _ in range(3):
            self.assertEqual(imap_login(self.a, "127.0.0.32", USER, "bad"),
                             "NO")
        self.assertEqual(imap_login(self.a, "127.0.0.32", USER, PASSWORD),
                         "NO")
        self.assertGreaterEqual(
            self.a.metric("ringgate_throttle_local_decisions_total") or 0, 1)
        # back: shared counting resumes (the script is loaded again)
        self.redis.start()
        self.redis_back()
        for _ in range(3):
            self.assertEqual(imap_login(self.a, "127.0.0.33", USER, "bad"),
                             "NO")
        self.assertEqual(imap_login(self.b, "127.0.0.33", USER, PASSWORD),
                         "NO")

    def test_redis_stopped_behaves_like_down(self):
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            self.assertEqual(imap_login(self.a, "127.0.0.41", USER,
                                        PASSWORD), "OK")
            self.a.wait_metric("ringgate_throttle_backend_up", 0,
                               timeout=15)
            self.assertGreaterEqual(self.a.metric(
                "ringgate_throttle_backend_errors_total",
                reason="timeout") or 0, 1)
            self.assertEqual(imap_login(self.a, "127.0.0.42", BOB, BOB_PW),
                             "OK")
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.redis_back()

    def test_clients_hanging_up_while_decided(self):
        """Clients that leave while their admission or their login's
        verdict is out on a frozen Redis, or while held in the tarpit:
        nothing leaks (the holds on the concurrency counters included)
        and the instance serves on."""
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(20):
                s = socket.create_connection(
                    ("127.0.0.1", port(self.a, "imap")), TIMEOUT,
                    source_address=("127.0.0.81", 0))
                s.close()
            for i in range(5):
                s, f = connect(self.a, "imap", "127.0.0.82")
                f.readline()
                s.sendall(b'a LOGIN "%s" "bad"\r\n' % USER.encode())
                s.close()
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.redis_back()
        # tarpitted, then gone
        for i in range(3):
            s, f = connect(self.a, "imap", "127.0.0.83")
            f.readline()
            s.sendall(b'a LOGIN "%s" "bad"\r\n' % USER.encode())
            s.close()
        # the address's five connections are all free again
        held = []
        try:
            for _ in range(5):
                line, s = greeting(self.a, "imap", "127.0.0.81")
                held.append(s)
                self.assertTrue(line.startswith("* OK"), line)
        finally:
            for s in held:
                s.close()
        self.assertEqual(imap_login(self.a, "127.0.0.84", USER, PASSWORD),
                         "OK")
        self.a.assert_alive()

    def test_fail_closed_refuses(self):
        dead = fresh_port()  # nothing listens there
        g = self.make_gate("closed", throttle_cfg(dead, fail_closed=True))
        self.addCleanup(g.stop_checked)
        line, s = greeting(g, "imap", "127.0.0.51")
        s.close()
        self.assertTrue(line.startswith("* BYE [UNAVAILABLE]"), line)
        self.assertGreaterEqual(self.decisions(g, "fail_closed", "refused"),
                                1)
        self.assertEqual(g.metric("ringgate_throttle_backend_up"), 0)
        # the allow-list still gets in
        self.assertEqual(imap_login(g, "127.0.0.200", USER, PASSWORD), "OK")

    def test_admin_view_and_unblock(self):
        for _ in range(3):
            self.assertEqual(imap_login(self.a, "127.0.0.71", USER, "bad"),
                             "NO")
        st, _, body = h.http_get(self.a.admin_port, "/throttle")
        self.assertEqual(st, 200)
        view = json.loads(body)
        self.assertIn("b:127.0.0.71", [e["key"] for e in view["blocked"]])
        self.assertEqual(view["backend"], "up")
        self.assertEqual(imap_login(self.b, "127.0.0.71", USER, PASSWORD),
                         "NO")
        # through the tool, on A: A and Redis forget it at once, so B lets
        # it in as soon as its memory of Redis's verdict (5 s) runs out
        out = h.run([CTL, "-a", "127.0.0.1:%d" % self.a.admin_port,
                     "unblock", "127.0.0.71"])
        self.assertIn("127.0.0.71", out.stdout)
        self.assertEqual(imap_login(self.a, "127.0.0.71", USER, PASSWORD),
                         "OK")
        h.wait_for(lambda: imap_login(self.b, "127.0.0.71", USER,
                                      PASSWORD) == "OK",
                   timeout=20, interval=0.5, what="unblocked on B")
        out = h.run([CTL, "-a", "127.0.0.1:%d" % self.a.admin_port,
                     "throttle"])
        self.assertNotIn("b:127.0.0.71", out.stdout)
        # what the endpoint refuses
        for path, method, want in (
                ("/throttle/unblock?ip=nonsense", "POST", 400),
                ("/throttle/unblock?ip=10.1.2.3/8", "POST", 400),
                ("/throttle/unblock", "POST", 400),
                ("/throttle/unblock?ip=1.2.3.4", "GET", 405),
                ("/throttle", "POST", 405),
                ("/throttle/other", "GET", 404)):
            st = h.http_get(self.a.admin_port, path, method=method)[0]
            self.assertEqual(st, want, (path, method))
        out = h.run([CTL, "-a", "127.0.0.1:%d" % self.a.admin_port,
                     "unblock", "2001:db8::/64"])
        self.assertIn("2001:db8::/64", out.stdout)

    def test_client_address_from_proxy_header(self):
        """Behind a load balancer the PROXY header's address is the one
        counted: blocking 192.0.2.7 leaves 192.0.2.8 alone."""
        tp = throttle_cfg(self.redis.port)
        g = self.make_gate("lb", tp)
        self.addCleanup(g.stop_checked)

        def lb_login(client, password):
            s, f = connect(g, "imap_lb", "127.0.0.61")
            try:
                s.sendall(b"PROXY TCP4 %s 127.0.0.1 5555 143\r\n" %
                          client.encode())
                if not f.readline().startswith(b"* OK"):
                    return "refused"
                s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(),
                                                       password.encode()))
                line = f.readline()
                while line and not line.startswith(b"a "):
                    line = f.readline()
                return line.split()[1].decode() if line else "closed"
            finally:
                s.close()
        for _ in range(3):
            self.assertEqual(lb_login("192.0.2.7", "bad"), "NO")
        self.assertEqual(lb_login("192.0.2.7", PASSWORD), "NO")
        self.assertEqual(lb_login("192.0.2.8", PASSWORD), "OK")

    def test_ipv6_address_and_64_rules(self):
        """::1 directly, and IPv6 clients behind PROXY headers: the /64
        is one network, another /48 is not."""
        tp = throttle_cfg(self.redis.port)
        tp["imap"] = dict(tp["imap"], conns_ip=2, conns_net=3)
        d = gate_dir(self.dir, "v6")
        cfg = gate_cfg(d, [(self.cert, self.key)], self.store.cfg)
        v6port, lbport = fresh_port(), fresh_port()
        cfg["imap"] = [
            {"name": "imap6", "listen": "[::1]:%d" % v6port, "tls": False,
             "starttls": False, "trusted": True, "trusted_nets": ["::1"]},
            {"name": "imap_lb", "listen": "127.0.0.1:%d" % lbport,
             "tls": False, "starttls": False, "trusted": True,
             "trusted_nets": ["2001:db8::/32"], "proxy_protocol": True,
             "proxy_nets": ["127.0.0.62"]}]
        cfg["pop3"] = [trusted("pop3")]
        cfg["submission"] = [trusted("submission")]
        cfg["throttle"] = tp
        g = start_proc(h.Ringgate(d, cfg))
        self.addCleanup(g.stop_checked)
        held = []

        def v6():
            s = socket.create_connection(("::1", v6port), TIMEOUT)
            held.append(s)
            return s.makefile("rb").readline().decode()

        def lb(client):
            s = socket.create_connection(("127.0.0.1", lbport), TIMEOUT,
                                         source_address=("127.0.0.62", 0))
            held.append(s)
            s.sendall(b"PROXY TCP6 %s 2001:db8::ffff 5555 143\r\n" %
                      client.encode())
            return s.makefile("rb").readline().decode()
        try:
            self.assertTrue(v6().startswith("* OK"))
            self.assertTrue(v6().startswith("* OK"))
            self.assertTrue(v6().startswith("* BYE [UNAVAILABLE]"))
            # three addresses of one /64 fill it; a fourth is refused
            for a in ("2001:db8:1:1::1", "2001:db8:1:1::2",
                      "2001:db8:1:1::3"):
                self.assertTrue(lb(a).startswith("* OK"), a)
            self.assertTrue(lb("2001:db8:1:1::4").startswith("* BYE"))
            # another /64 of the same /48: the /48 is full too
            self.assertTrue(lb("2001:db8:1:2::1").startswith("* BYE"))
            # another /48 is free
            self.assertTrue(lb("2001:db8:2::1").startswith("* OK"))
        finally:
            for s in held:
                s.close()
        self.assertGreaterEqual(self.decisions(g, "conns_net", "refused"), 2)

    # ------------------------------------------------- POP-before-SMTP

    def test_mailbox_login_lets_its_address_submit(self):
        tp = throttle_cfg(self.redis.port, before_smtp="1m")
        p1 = self.make_gate("pbs1", tp)
        p2 = self.make_gate("pbs2", tp)
        self.addCleanup(p1.stop_checked)
        self.addCleanup(p2.stop_checked)

        def mail(gate, src, rcpt=BOB):
            """The answers to EHLO, MAIL and then RCPT (when MAIL was
            taken), then the rest of a message and QUIT."""
            s, f = connect(gate, "submission", src)
            try:
                f.readline()
                s.sendall(b"EHLO client.example\r\n")
                line = f.readline()
                while line.startswith(b"250-"):
                    line = f.readline()
                s.sendall(b"MAIL FROM:<%s>\r\n" % USER.encode())
                m = f.readline().decode()
                if not m.startswith("250"):
                    return m
                s.sendall(b"RCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
                r, d = f.readline().decode(), f.readline().decode()
                s.sendall(b"Subject: before smtp\r\n\r\nhello\r\n.\r\n"
                          b"QUIT\r\n")
                return " | ".join((m.strip(), r.strip(), d.strip(),
                                   f.readline().decode().strip()))
            finally:
                s.close()
        # nobody logged in from here: as without the feature
        self.assertTrue(mail(p1, "127.0.0.91").startswith("530 5.7.0"))
        # a mailbox login on one instance ...
        self.assertEqual(imap_login(p1, "127.0.0.91", USER, PASSWORD), "OK")
        # ... lets its address submit through the other, as that user
        out = mail(p2, "127.0.0.91")
        self.assertTrue(out.startswith("250"), out)
        self.assertIn("354", out)
        self.assertTrue(out.split(" | ")[-1].startswith("250 2.0.0"), out)
        # another address, and an instance with the feature off: no
        self.assertTrue(mail(p2, "127.0.0.92").startswith("530"))
        self.assertEqual(imap_login(self.a, "127.0.0.93", USER, PASSWORD),
                         "OK")
        self.assertTrue(mail(self.a, "127.0.0.93").startswith("530"))

    # ------------------------------------------------------------ tarpit

    def test_thousand_tarpitted_do_not_hold_up_a_good_login(self):
        tp = throttle_cfg(self.redis.port)
        # 2 minutes: far longer than setting up 1,000 connections takes
        # even under ASan on a loaded box, so all of them are still held
        tp["imap"] = {"delay": "120s", "delay_max": "120s", "block_fails": 0,
                      "block_fails_net": 0, "conns_ip": 0, "conns_net": 0,
                      "rate_ip": 0, "rate_net": 0}
        g = self.make_gate("tarpit", tp)
        self.addCleanup(g.stop_checked)
        held = []
        try:
            # in batches, so the verify pool's queue never overflows
            # (its refusals would be answered at once, not tarpitted)
            for i in range(1000):
                src = "127.0.%d.%d" % (20 + i // 200, 1 + i % 200)
                s, f = connect(g, "imap", src)
                held.append((s, f))
                self.assertTrue(f.readline().startswith(b"* OK"))
                s.sendall(b'a LOGIN "%s" "wrong"\r\n' % USER.encode())
                if i % 50 == 49:
                    g.wait_metric("ringgate_throttle_decisions_total",
                                  lambda v, n=i + 1: (v or 0) >= n,
                                  timeout=30, rule="tarpit",
                                  result="delayed")
            # every one of them is now held
            g.wait_metric("ringgate_throttle_decisions_total",
                          lambda v: (v or 0) >= 1000, timeout=30,
                          rule="tarpit", result="delayed")
            self.assertEqual(imap_login(g, "127.0.40.1", USER, PASSWORD),
                             "OK")
            waiting = [s for s, f in held
                       if not select.select([s], [], [], 0)[0]]
            self.assertGreater(len(waiting), 900)
        finally:
            for s, f in held:
                s.close()


class TestThrottleConfig(unittest.TestCase):
    """`ringgate -t` checks the throttle group: mistakes name FILE:LINE."""

    def setUp(self):
        import test_gate_front as gf
        self.case = gf.TestConfigCheck("test_good")
        self.case.setUp()
        self.addCleanup(self.case.doCleanups)

    def with_throttle(self, t):
        return dict(self.case.cfg, throttle=t)

    def test_good_and_mistakes(self):
        _, code, out = self.case.check(self.with_throttle(
            throttle_cfg(6379, allow_nets=["10.0.0.0/8", "::1"])))
        self.assertEqual(code, 0, out)
        self.assertIn("test is successful", out)
        self.case.assert_error_at(self.with_throttle(
            {"redis": "localhost:6379"}), "throttle = {", "throttle.redis")
        self.case.assert_error_at(self.with_throttle(
            {"imap": {"conns_ipp": 3}}), "conns_ipp", "did you mean")
        self.case.assert_error_at(self.with_throttle(
            {"allow_nets": ["10.1.2.3/8"]}), None, "allow_nets",
            "ringgate.conf:")
        self.case.assert_error_at(self.with_throttle(
            {"pop3": {"delay": "20s", "delay_max": "1s"}}), "throttle = {",
            "delay_max")
        self.case.assert_error_at(self.with_throttle(
            {"timeout": "soon"}), "\"soon\"", "throttle.timeout")


if __name__ == "__main__":
    unittest.main()
