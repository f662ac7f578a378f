"""test_policy_config.py - ringstore's `policy { }` group under `-t`.

A group with every key checks out (and a config without one still does);
a bad clamd address, an unknown mode, a bad extension or a misspelled key
fails with FILE:LINE naming the key, so an operator can find the typo.
The policy itself is tested on files and against a real clamd in
tests/unit/test_policy.c.
"""

import os
import unittest

import harness as h
import rs_harness as rs


class PolicyConfig(unittest.TestCase):

    def setUp(self):
        if not os.access(rs.RINGSTORE, os.X_OK):
            self.fail("%s is not built" % rs.RINGSTORE)
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {"u@example.org": "pw"})
        self.path = os.path.join(self.dir, "ringstore.conf")

    def check(self, policy):
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port())
        if policy is not None:
            cfg["policy"] = policy
        text = h.config_text(cfg)
        with open(self.path, "w") as f:
            f.write(text)
        p = h.run([rs.RINGSTORE, "-t", "-c", self.path], timeout=30,
                  check=False)
        return text, p.returncode, p.stdout + p.stderr

    def assert_error(self, policy, needle, *words):
        text, code, out = self.check(policy)
        self.assertEqual(code, 1, out)
        self.assertIn("%s:%d:" % (self.path, h.line_of(text, needle)), out)
        for w in words:
            self.assertIn(w, out)

    def test_valid(self):
        for policy in (None, {}, {
                "attachments": "strip",
                "extensions": [".exe", "js"],
                "types": ["application/x-msdownload"],
                "clamd": "/run/clamav/clamd.ctl",
                "clamd_fail": "open", "clamd_timeout": "5s",
                "clamd_max": "10M", "mime_limit": "tempfail",
                "max_depth": 10, "max_parts": 200, "max_header": "32k"}):
            _, code, out = self.check(policy)
            self.assertEqual(code, 0, out)

    def test_tcp_clamd(self):
        _, code, out = self.check({"clamd": "127.0.0.1:3310"})
        self.assertEqual(code, 0, out)

    def test_bad_values(self):
        self.assert_error({"attachments": "quarantine"}, "attachments =",
                          "attachments", "strip")
        self.assert_error({"clamd_timeout": "forever"}, "clamd_timeout =",
                          "clamd_timeout")
        self.assert_error({"max_depth": 1000}, "max_depth =", "max_depth")
        self.assert_error({"clamd_fial": "open"}, "clamd_fial =",
                          "clamd_fial")

    def test_group_checks(self):
        # cross-field checks name the group's line
        self.assert_error({"clamd": "clamd.example.org:3310"}, "policy",
                          "policy.clamd", "host:port")
        self.assert_error({"extensions": ["tar.gz"]}, "policy",
                          "tar.gz")


if __name__ == "__main__":
    unittest.main()
