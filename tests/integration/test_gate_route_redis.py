"""test_gate_route_redis.py - routing through a real ringgate by Redis
route entries, with two real ringstores behind it and a real redis-server.

The hash is ported here (route_hash.c) so the test knows where hashing
would put a user, and can give a user an entry that names the OTHER store:
landing there proves the entry won. Also: an entry naming no configured
back end hashes (and is counted), and with Redis gone logins still work,
hashed, counted in route_redis_fallback_total. Which store a user landed
on is read from the stores' mail roots (a first login creates the Maildir).
Skips without redis-server.
"""

import imaplib
import math
import os
import shutil
import socket
import subprocess
import time
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import MASTER, MASTER_PW, gate_cfg, port_of, store_cfg

REDIS = shutil.which("redis-server")
M64 = (1 << 64) - 1


def _mix64(x):
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & M64
    x ^= x >> 33
    x = (x * 0xc4ceb9fe1a85ec53) & M64
    x ^= x >> 33
    return x


def _hash(s):
    b = s.encode()
    x = 0xcbf29ce484222325
    for c in b:
        x = ((x ^ c) * 0x100000001b3) & M64
    return _mix64(x ^ len(b))


def hashed(user, names):
    """Index of the back end weighted rendezvous hashing picks (weights 1),
    exactly as proxy/route_hash.c does."""
    uh = _hash(user)
    best, best_score = -1, 0.0
    for i, n in enumerate(names):
        x = _mix64(uh ^ _mix64((_hash(n) + 0x9e3779b97f4a7c15) & M64))
        u = ((x >> 11) + 0.5) / 9007199254740992.0
        score = -1.0 / math.log(u)
        if best == -1 or score > best_score:
            best, best_score = i, score
    return best


class Redis:
    def __init__(self, directory):
        self.dir = directory
        self.port = h.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_for(self._up, timeout=10, what="redis-server up")

    def _up(self):
        try:
            return self.cmd("PING") == "+PONG"
        except OSError:
            return False

    def cmd(self, *args):
        """One command in RESP over a fresh socket; the reply's first line."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(out)
            return s.makefile("rb").readline().decode().strip()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@unittest.skipUnless(REDIS or h.IN_CI, "redis-server not installed")
class TestRedisRoute(unittest.TestCase):
    NAMES = ["store1", "store2"]
    USERS = ["r%d@example.test" % i for i in range(12)]

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.redis = Redis(self.dir)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        users = {u: "pw-" + u for u in self.USERS}
        self.stores = []
        for name in self.NAMES:
            d = os.path.join(self.dir, name)
            os.mkdir(d)
            rs.write_passwd(os.path.join(d, "passwd"),
                            dict(users, **{MASTER: MASTER_PW}))
            st = rs.Ringstore(d, store_cfg(d, [(self.cert, key)]))
            st.start(self)
            self.stores.append(st)
        cfg = gate_cfg(self.dir, [(self.cert, key)], self.stores[0].cfg)
        cfg["backends"] = [
            {"name": self.NAMES[i],
             "imap": "127.0.0.1:%d" % port_of(st.cfg, "imap"),
             "pop3": "127.0.0.1:%d" % port_of(st.cfg, "pop3"),
             "submission": "127.0.0.1:%d" % port_of(st.cfg, "submission")}
            for i, st in enumerate(self.stores)]
        cfg["route"] = {"redis": "127.0.0.1:%d" % self.redis.port,
                        "redis_timeout": "500ms", "cache_ttl": "30s"}
        rs.write_passwd(os.path.join(self.dir, "gate.passwd"), users)
        self.gate = h.Ringgate(self.dir, cfg).start(self)

    def login(self, user):
        port = int(self.gate.cfg["imap"][1]["listen"].rsplit(":", 1)[1])
        m = imaplib.IMAP4_SSL("127.0.0.1", port, timeout=20,
                              ssl_context=h.client_context(
                                  cafiles=[self.cert]))
        try:
            m.login(user, "pw-" + user)
        except imaplib.IMAP4.error as e:
            rs.logout_quietly(m)
            return str(e)
        m.select("INBOX")
        m.logout()
        return "ok"

    def home(self, user):
        """The stores holding user's Maildir, as indexes."""
        local = user.split("@")[0]
        return {i for i, st in enumerate(self.stores)
                if os.path.isdir(os.path.join(st.dir, "mail", "example.test",
                                              local))}

    def fallback(self):
        total = 0
        for reason in ("error", "timeout", "down", "unknown_backend"):
            total += self.gate.metric("ringgate_route_redis_fallback_total",
                                      reason=reason) or 0
        return total

    def test_entry_wins_unknown_hashes_redis_down_hashes(self):
        on = [[u for u in self.USERS if hashed(u, self.NAMES) == i]
              for i in (0, 1)]
        self.assertTrue(on[0] and on[1], on)
        # an entry naming the store hashing would NOT pick
        moved = [on[0][0], on[1][0]]
        for u in moved:
            other = 1 - hashed(u, self.NAMES)
            self.assertEqual(
                self.redis.cmd("SET", "rg:route:" + u, self.NAMES[other]),
                "+OK")
        # an entry naming nothing configured: hashed, counted
        odd = on[0][1]
        self.redis.cmd("SET", "rg:route:" + odd, "nosuch")
        for u in moved + [odd]:
            self.assertEqual(self.login(u), "ok", u)
        for u in moved:
            self.assertEqual(self.home(u), {1 - hashed(u, self.NAMES)}, u)
        self.assertEqual(self.home(odd), {hashed(odd, self.NAMES)})
        self.assertEqual(self.gate.metric(
            "ringgate_route_redis_fallback_total",
            reason="unknown_backend"), 1)
        # users without an entry are hashed
        plain = [on[0][2], on[1][1]]
        for u in plain:
            self.assertEqual(self.login(u), "ok", u)
            self.assertEqual(self.home(u), {hashed(u, self.NAMES)}, u)
        self.assertEqual(self.fallback(), 1)
        # Redis gone: logins still work, hashed, and the fallback counted
        self.redis.stop()
        late = [on[0][3], on[1][2]]
        for u in late:
            self.assertEqual(self.login(u), "ok", u)
            self.assertEqual(self.home(u), {hashed(u, self.NAMES)}, u)
        self.assertGreaterEqual(self.fallback(), 1 + len(late))
        self.gate.assert_alive()


if __name__ == "__main__":
    unittest.main()
