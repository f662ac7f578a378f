"""test_redis_sentinel.py - ringgate's Redis routing through Redis Sentinel
(core/redis_loop.c), with real processes: two redis-servers (the second a
replica of the first), one redis-sentinel watching them, two ringstores
and a ringgate whose `route { sentinels = [...]; master_name = ...; }`
names only the sentinel.

A route entry that names the store hashing would NOT pick proves the entry
was read from Redis (the store a user landed on is read from the stores'
mail roots). The test follows the master twice: `SENTINEL failover` (the
old master keeps taking writes for seconds before the sentinel demotes
it: ringgate must move on +switch-master, not wait for that), then the new
master killed outright (the sentinel notices, promotes the other one).
Each time an entry written on the NEW master only must route there, and
ringgate must log the move. One worker, so the one Redis
connection the test watches is the one every login uses; the route cache
is off. Skips without redis-server / redis-sentinel (fails under CI).
"""

import imaplib
import os
import shutil
import socket
import subprocess
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import MASTER, MASTER_PW, gate_cfg, port_of, store_cfg
from test_gate_route_redis import hashed

REDIS = shutil.which("redis-server")
SENTINEL = shutil.which("redis-sentinel")
MASTER_NAME = "rgmaster"


def resp(port, *args, timeout=2):
    """One command in RESP over a fresh socket; the parsed reply (str,
    int, list, None, or an Exception instance for -ERR)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(out)
        f = s.makefile("rb")
        return _read(f)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        return RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError("bad RESP %r" % line)


class Proc:
    """A redis-server or redis-sentinel on a loopback port."""

    def __init__(self, directory, name, argv):
        self.port = h.free_port()
        self.dir = os.path.join(directory, name)
        os.mkdir(self.dir)
        self.argv = argv
        self.proc = None

    def start(self, extra=()):
        self.proc = subprocess.Popen(
            self.argv + list(extra), cwd=self.dir,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_for(self.up, timeout=10, what="%s up" % self.argv[0])
        return self

    def up(self):
        try:
            return resp(self.port, "PING") == "PONG"
        except OSError:
            return False

    def cmd(self, *args):
        return resp(self.port, *args)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def redis_server(directory, name, replica_of=None):
    p = Proc(directory, name, [])
    p.argv = [REDIS, "--port", str(p.port), "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--dir", p.dir]
    if replica_of is not None:
        p.argv += ["--replicaof", "127.0.0.1", str(replica_of.port)]
    return p.start()


def redis_sentinel(directory, master):
    p = Proc(directory, "sentinel", [])
    conf = os.path.join(p.dir, "sentinel.conf")  # the sentinel rewrites it
    with open(conf, "w") as f:
        f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                "sentinel monitor %s 127.0.0.1 %d 1\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 2000\n"
                % (p.port, p.dir, MASTER_NAME, master.port, MASTER_NAME,
                   MASTER_NAME))
    p.argv = [SENTINEL or REDIS, conf] + ([] if SENTINEL else ["--sentinel"])
    return p.start()


def sentinel_master_port(sentinel):
    """The master's port as the sentinel names it, or None."""
    try:
        r = sentinel.cmd("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
    except OSError:
        return None
    return int(r[1]) if isinstance(r, list) else None


def sentinel_has_replica(sentinel, master):
    """The sentinel sees master as the master and a healthy replica of it
    (a failover can pick it)."""
    r = sentinel.cmd("SENTINEL", "replicas", MASTER_NAME)
    if sentinel_master_port(sentinel) != master.port or \
            not isinstance(r, list):
        return False
    for rep in r:
        d = dict(zip(rep[::2], rep[1::2]))
        if ("s_down" not in d.get("flags", "") and
                d.get("master-link-status") == "ok"):
            return True
    return False


@unittest.skipUnless((REDIS and SENTINEL) or h.IN_CI,
                     "redis-server or redis-sentinel not installed")
class TestSentinelRoute(unittest.TestCase):
    NAMES = ["store1", "store2"]
    USERS = ["s%d@example.test" % i for i in range(24)]

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.a = redis_server(self.dir, "a")
        self.addCleanup(self.a.stop)
        self.b = redis_server(self.dir, "b", replica_of=self.a)
        self.addCleanup(self.b.stop)
        self.sentinel = redis_sentinel(self.dir, self.a)
        self.addCleanup(self.sentinel.stop)
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
        cfg["daemon"]["workers"] = 1
        cfg["backends"] = [
            {"name": self.NAMES[i],
             "imap": "127.0.0.1:%d" % port_of(st.cfg, "imap"),
             "pop3": "127.0.0.1:%d" % port_of(st.cfg, "pop3"),
             "submission": "127.0.0.1:%d" % port_of(st.cfg, "submission")}
            for i, st in enumerate(self.stores)]
        cfg["route"] = {
            "sentinels": ["127.0.0.1:%d" % h.free_port(),  # nobody there
                          "127.0.0.1:%d" % self.sentinel.port],
            "master_name": MASTER_NAME,
            "redis_timeout": "500ms", "cache_ttl": "0s"}
        rs.write_passwd(os.path.join(self.dir, "gate.passwd"), users)
        self.gate = h.Ringgate(self.dir, cfg).start(self)
        self.spare = list(self.USERS)
        self.probe = self.spare.pop(0)  # no entry: hashed, Redis asked

    # -- helpers
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
        m.logout()
        return "ok"

    def home(self, user):
        local = user.split("@")[0]
        return {i for i, st in enumerate(self.stores)
                if os.path.isdir(os.path.join(st.dir, "mail", "example.test",
                                              local))}

    def fallback(self):
        return sum(self.gate.metric("ringgate_route_redis_fallback_total",
                                    reason=r) or 0
                   for r in ("error", "timeout", "down", "unknown_backend"))

    def master_port(self):
        return sentinel_master_port(self.sentinel)

    def replicas_known(self, master):
        return sentinel_has_replica(self.sentinel, master)

    def redis_routes(self):
        """A login routed with Redis answering (no fallback counted)."""
        before = self.fallback()
        if self.login(self.probe) != "ok":
            return False
        return self.fallback() == before

    def wait_switched(self, mark, master):
        """ringgate logged master as the new one after mark (a length of
        its stderr); probe logins make it ask when it has not heard."""
        want = ("event=redis.sentinel_master master_name=%s "
                "master=127.0.0.1:%d" % (MASTER_NAME, master.port))

        def seen():
            if want in self.gate.stderr()[mark:]:
                return True
            self.redis_routes()
            return False
        h.wait_for(seen, timeout=15, interval=0.2,
                   what="ringgate to follow the master to %d" % master.port)

    def assert_entry_routes(self, master):
        """An entry written on master only routes its user there."""
        u = next(x for x in self.spare if hashed(x, self.NAMES) == 0)
        self.spare.remove(u)
        self.assertEqual(master.cmd("SET", "rg:route:" + u, self.NAMES[1]),
                         "OK")
        self.assertEqual(self.login(u), "ok", u)
        self.assertEqual(self.home(u), {1},
                         "%s: %s" % (u, self.redis_log()))

    def redis_log(self):
        return "\n".join(x for x in self.gate.stderr().splitlines()
                         if "redis" in x or "route" in x)

    def test_follows_failover_and_dead_master(self):
        # the first sentinel listed is down: the second answers
        self.assertTrue(self.redis_routes())
        self.assert_entry_routes(self.a)

        # 1. an operator's failover: b is promoted, a demoted
        h.wait_for(lambda: self.replicas_known(self.a), timeout=15,
                   what="the sentinel to see b as a healthy replica")
        mark = len(self.gate.stderr())
        self.assertEqual(self.sentinel.cmd("SENTINEL", "failover",
                                           MASTER_NAME), "OK")
        h.wait_for(lambda: self.master_port() == self.b.port, timeout=15,
                   what="b promoted")
        h.wait_for(lambda: self.b.cmd("ROLE")[0] == "master", timeout=10,
                   what="b a master")
        # +switch-master: at once, though a still takes writes for
        # seconds before the sentinel demotes it
        self.wait_switched(mark, self.b)
        self.assertIn("why=switch-master", self.gate.stderr()[mark:],
                      self.redis_log())
        self.assert_entry_routes(self.b)

        # 2. the master killed: a takes over. The sentinel would demote a
        # to b's replica by itself, but only some 8 s after it saw a still
        # claiming the master role: the operator's REPLICAOF is quicker.
        self.assertEqual(self.a.cmd("REPLICAOF", "127.0.0.1", self.b.port),
                         "OK")
        h.wait_for(lambda: "master_link_status:up" in
                   self.a.cmd("INFO", "replication"), timeout=10,
                   what="a replicating b")
        mark = len(self.gate.stderr())
        self.b.stop()
        h.wait_for(lambda: self.master_port() == self.a.port, timeout=20,
                   what="a promoted after b died")
        h.wait_for(lambda: self.a.cmd("ROLE")[0] == "master", timeout=10,
                   what="a a master")
        self.wait_switched(mark, self.a)
        h.wait_for(self.redis_routes, timeout=10, interval=0.2,
                   what="routing through a again")
        self.assert_entry_routes(self.a)
        self.assertIn("event=redis.sentinel_master", self.gate.stderr())
        self.gate.assert_alive()


class TestSentinelConfig(unittest.TestCase):
    """`ringgate -t`: the sentinel options' mistakes name file:line."""

    def check(self, route):
        d = h.temp_dir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        cfg = gate_cfg(d, [(cert, key)], store_cfg(d, [(cert, key)]))
        cfg["route"] = route
        path = os.path.join(d, "ringgate.conf")
        text = h.config_text(cfg)
        with open(path, "w") as f:
            f.write(text)
        r = h.run([h.RINGGATE, "-t", "-c", path], check=False)
        return r.returncode, r.stderr, "%s:%d:" % (path,
                                                   h.line_of(text, "route ="))

    def test_errors(self):
        for route, want in (
                ({"sentinels": ["127.0.0.1:1"]}, "needs route.master_name"),
                ({"sentinels": ["localhost:26379"], "master_name": "m"},
                 "numeric host"),
                ({"sentinels": ["127.0.0.1:1"], "master_name": "m",
                  "redis": "127.0.0.1:2"}, "exclude each other"),
                ({"master_name": "m"}, "needs route.sentinels")):
            code, err, where = self.check(route)
            self.assertNotEqual(code, 0, route)
            self.assertIn(want, err, route)
            self.assertIn(where, err, route)
        # an array works as well as a list
        code, err, _ = self.check({"sentinels": h.Raw('["127.0.0.1:26379", '
                                                      '"[::1]:26379"]'),
                                   "master_name": "mymaster"})
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    unittest.main()
