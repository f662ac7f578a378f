"""test_throttle_sentinel.py - the badguy throttle's shared counters
through Redis Sentinel (`throttle { sentinels = [...]; master_name = ...;
}`), with real processes: two redis-servers (b a replica of a), one
redis-sentinel watching them, one ringstore and two ringgates (A and B,
one worker each) whose throttle names only the sentinels (the first one
listed is dead: the second answers).

An attacker address fails twice through A before `SENTINEL failover`: the
counts are on the master a (keys rg:thr:... there) and reach the replica
b. After the failover both ringgates follow the master to b; one more
failure through B completes the block (block_fails = 3) on b, and the
right password from that address is refused on both instances (neither
has three local failures: the block is the shared one). A second
attacker fails three times after the failover, alternating instances:
blocked on both too; the admin's unblock clears the first one on b. Meanwhile a good user from another address logs in
through both ringgates in a loop, and every one of those logins works,
during the failover as well (fail-open on the timeout). Then the master b
is killed: the sentinel promotes a, both ringgates follow, the block
(replicated to a) still holds and new failures count on a.

Plus `ringgate -t` mistakes in the throttle's sentinel options. Skips
without redis-server / redis-sentinel (fails under CI).
"""

import json
import os
import threading
import time
import unittest

import harness as h
import rs_harness as rs
from test_gate_front import (BOB, BOB_PW, MASTER, MASTER_PW, PASSWORD,
                             USER, gate_cfg, start_proc, store_cfg)
from test_redis_sentinel import (MASTER_NAME, REDIS, SENTINEL,
                                 sentinel_has_replica, sentinel_master_port,
                                 redis_sentinel, redis_server)
from test_throttle import gate_dir, imap_login, trusted

PREFIX = "rg:thr:"


def throttle_sentinel_cfg(sentinel_port):
    return {
        "sentinels": ["127.0.0.1:%d" % h.free_port(),  # nobody there
                      "127.0.0.1:%d" % sentinel_port],
        "master_name": MASTER_NAME,
        "timeout": "300ms",
        "retry": "300ms",
        "imap": {"delay": "50ms", "delay_max": "200ms", "block_fails": 3,
                 "block_time": "1m", "fail_window": "1m", "conns_ip": 50,
                 "rate_ip": 1000, "rate_net": 10000, "conns_net": 1000,
                 "block_fails_net": 1000},
    }


@unittest.skipUnless((REDIS and SENTINEL) or h.IN_CI,
                     "redis-server or redis-sentinel not installed")
class TestThrottleSentinel(unittest.TestCase):
    def setUp(self):
        self.dir = h.temp_dir(self)
        self.a = redis_server(self.dir, "a")
        self.addCleanup(self.a.stop)
        self.b = redis_server(self.dir, "b", replica_of=self.a)
        self.addCleanup(self.b.stop)
        self.sentinel = redis_sentinel(self.dir, self.a)
        self.addCleanup(self.sentinel.stop)
        cert, key = h.make_cert(self.dir, "ec", stem="server")
        sd = gate_dir(self.dir, "store")
        rs.write_passwd(os.path.join(sd, "passwd"),
                        {USER: PASSWORD, BOB: BOB_PW, MASTER: MASTER_PW})
        self.store = rs.Ringstore(sd, store_cfg(sd, [(cert, key)]))
        self.store.start(self)
        self.gates = [self.make_gate(n, cert, key) for n in ("A", "B")]

    def make_gate(self, name, cert, key):
        d = gate_dir(self.dir, name)
        cfg = gate_cfg(d, [(cert, key)], self.store.cfg)
        cfg["daemon"]["workers"] = 1
        cfg["imap"] = [trusted("imap")]
        cfg["pop3"] = [trusted("pop3")]
        cfg["submission"] = [trusted("submission")]
        cfg["throttle"] = throttle_sentinel_cfg(self.sentinel.port)
        g = h.Ringgate(d, cfg)
        start_proc(g)
        self.addCleanup(g.stop_checked)
        return g

    # -- helpers
    def master_port(self):
        return sentinel_master_port(self.sentinel)

    def replica_known(self, master):
        return sentinel_has_replica(self.sentinel, master)

    def promoted(self, redis, timeout):
        h.wait_for(lambda: self.master_port() == redis.port,
                   timeout=timeout, what="%d promoted" % redis.port)
        h.wait_for(lambda: redis.cmd("ROLE")[0] == "master", timeout=10,
                   what="%d a master" % redis.port)

    def followed(self, marks, redis):
        """Both ringgates logged redis as their throttle's new master
        after marks (lengths of their stderr) and count on it again;
        attempts from an address of its own make them ask when they
        have not heard."""
        want = ("event=redis.sentinel_master master_name=%s "
                "master=127.0.0.1:%d" % (MASTER_NAME, redis.port))
        for g, mark in zip(self.gates, marks):
            def seen(g=g, mark=mark):
                if want in g.stderr()[mark:]:
                    return True
                imap_login(g, "127.0.0.40", BOB, BOB_PW)
                return False
            h.wait_for(seen, timeout=15, interval=0.2,
                       what="ringgate to follow the master to %d"
                       % redis.port)
            g.wait_metric("ringgate_throttle_backend_up", 1, timeout=10)

    def get(self, redis, kind, scope):
        return redis.cmd("GET", PREFIX + kind + ":" + scope)

    def fail(self, gate, src):
        self.assertEqual(imap_login(gate, src, USER, "wrong"), "NO")

    def assert_blocked(self, src):
        """The right password from src is refused on both instances."""
        for g in self.gates:
            self.assertEqual(imap_login(g, src, USER, PASSWORD), "NO",
                             self.throttle_log(g))

    def throttle_log(self, g):
        return "\n".join(x for x in g.stderr().splitlines()
                         if "redis" in x or "throttle" in x)

    def good_logins(self, stop, results):
        """BOB from an address that never fails, through both instances
        in turn, until stop is set."""
        i = 0
        while not stop.is_set():
            g = self.gates[i % 2]
            i += 1
            try:
                results.append(imap_login(g, "127.0.0.30", BOB, BOB_PW))
            except OSError as e:
                results.append("error: %s" % e)
            time.sleep(0.05)

    # -- the test
    def test_counts_follow_the_master(self):
        A, B = self.gates
        for g in self.gates:
            g.wait_metric("ringgate_throttle_backend_up", 1, timeout=10)
            self.assertIn("redis=sentinel:%s" % MASTER_NAME, g.stderr())
        # the counts are on the master a, and replicated to b
        self.fail(A, "127.0.0.21")
        self.fail(A, "127.0.0.21")
        self.assertEqual(self.get(self.a, "f", "127.0.0.21"), "2")
        self.assertEqual(self.get(self.a, "f", "127.0.0.0/24"), "2")
        h.wait_for(lambda: self.get(self.b, "f", "127.0.0.21") == "2",
                   timeout=10, what="the replica b to hold the counts")

        stop, results = threading.Event(), []
        t = threading.Thread(target=self.good_logins, args=(stop, results))
        t.start()
        try:
            # 1. an operator's failover: b promoted, a demoted later
            h.wait_for(lambda: self.replica_known(self.a), timeout=15,
                       what="the sentinel to see b as a healthy replica")
            marks = [len(g.stderr()) for g in self.gates]
            self.assertEqual(self.sentinel.cmd("SENTINEL", "failover",
                                               MASTER_NAME), "OK")
            self.promoted(self.b, 15)
            self.followed(marks, self.b)
        finally:
            stop.set()
            t.join(30)
        self.assertGreater(len(results), 3, results)
        self.assertEqual([r for r in results if r != "OK"], [], results)

        # a block reached partly before the failover (2 through A) and
        # partly after (1 through B, which counted none locally): b has
        # all three
        self.fail(B, "127.0.0.21")
        self.assertEqual(self.get(self.b, "f", "127.0.0.21"), "3",
                         self.throttle_log(B))
        self.assertEqual(self.b.cmd("EXISTS", PREFIX + "b:127.0.0.21"), 1,
                         self.throttle_log(B))
        self.assert_blocked("127.0.0.21")

        # a block reached entirely after the failover, across instances
        for g in (A, B, A):
            self.fail(g, "127.0.0.22")
        self.assertEqual(self.get(self.b, "f", "127.0.0.22"), "3")
        self.assertEqual(self.b.cmd("EXISTS", PREFIX + "b:127.0.0.22"), 1)
        self.assert_blocked("127.0.0.22")
        self.assertEqual(imap_login(A, "127.0.0.30", BOB, BOB_PW), "OK")
        # the admin's view and unblock reach the new master too
        st, _, body = h.http_get(A.admin_port, "/throttle")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["backend"], "up")
        st, _, _ = h.http_get(A.admin_port,
                              "/throttle/unblock?ip=127.0.0.21", "POST")
        self.assertEqual(st, 200)
        h.wait_for(lambda: self.b.cmd("EXISTS",
                                      PREFIX + "b:127.0.0.21") == 0,
                   timeout=5, what="the block gone from b")
        self.assertIsNone(self.get(self.b, "f", "127.0.0.21"))
        self.assertEqual(imap_login(A, "127.0.0.21", USER, PASSWORD), "OK")

        # 2. the master b killed: a promoted. The sentinel would demote a
        # to b's replica by itself, but only some 8 s after it saw a still
        # claiming the master role: the operator's REPLICAOF is quicker.
        self.assertEqual(self.a.cmd("REPLICAOF", "127.0.0.1", self.b.port),
                         "OK")
        h.wait_for(lambda: "master_link_status:up" in
                   self.a.cmd("INFO", "replication") and
                   self.get(self.a, "f", "127.0.0.22") == "3",
                   timeout=10, what="a replicating b")
        marks = [len(g.stderr()) for g in self.gates]
        self.b.stop()
        self.promoted(self.a, 20)
        self.followed(marks, self.a)
        self.assert_blocked("127.0.0.22")
        for g in (A, B):
            self.fail(g, "127.0.0.23")
        self.assertEqual(self.get(self.a, "f", "127.0.0.23"), "2")
        self.assertEqual(imap_login(B, "127.0.0.30", BOB, BOB_PW), "OK")
        for g in self.gates:
            g.assert_alive()


class TestThrottleSentinelConfig(unittest.TestCase):
    """`ringgate -t`: the throttle's sentinel options' mistakes name
    FILE:LINE (the throttle group's)."""

    def setUp(self):
        import test_gate_front as gf
        self.case = gf.TestConfigCheck("test_good")
        self.case.setUp()
        self.addCleanup(self.case.doCleanups)

    def with_throttle(self, t):
        return dict(self.case.cfg, throttle=t)

    def test_good_and_mistakes(self):
        _, code, out = self.case.check(self.with_throttle(
            throttle_sentinel_cfg(26379)))
        self.assertEqual(code, 0, out)
        self.assertIn("test is successful", out)
        _, code, out = self.case.check(self.with_throttle(
            {"sentinels": h.Raw('["127.0.0.1:26379", "[::1]:26379"]'),
             "master_name": "mymaster"}))
        self.assertEqual(code, 0, out)
        for t, want in (
                ({"sentinels": ["127.0.0.1:1"]},
                 "throttle.sentinels needs throttle.master_name"),
                ({"sentinels": ["127.0.0.1:1"], "master_name": "m",
                  "redis": "127.0.0.1:2"}, "exclude each other"),
                ({"master_name": "m"}, "needs throttle.sentinels"),
                ({"sentinels": ["localhost:26379"], "master_name": "m"},
                 "numeric host"),
                ({"sentinels": ["127.0.0.1:1"], "master_name": ""},
                 "needs throttle.master_name")):
            self.case.assert_error_at(self.with_throttle(t), "throttle = {",
                                      want)


if __name__ == "__main__":
    unittest.main()
