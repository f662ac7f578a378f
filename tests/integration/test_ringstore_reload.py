"""test_ringstore_reload.py - ringstore reloads users and certificates.

A running ringstore picks up an edited passwd-file by itself (the
auth.reload_check tick) and on SIGHUP; a broken file is refused as a whole
with file:line in the log and the old table keeps serving; a reload
forgets cached answers, so a changed password takes effect at once.
SIGHUP also swaps the STARTTLS certificate for new sessions while a
session started under the old one keeps working. The auth pool's counters
and the passwd-file gauges appear in /metrics (checked with promtool
where installed). `ringstore -t` parses the passwd-file and names a
missing master user with file:line.
"""

import imaplib
import os
import ssl
import subprocess
import unittest

import harness as h
import rs_harness as rs

OLD = ("old@example.test", "old-password-1")
NEW = ("new@example.test", "new-password-2")


class ReloadCase(unittest.TestCase):

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.passwd = os.path.join(self.dir, "passwd")
        rs.write_passwd(self.passwd, dict([OLD]))
        cfg = rs.tls_store_config(self, auth={"reload_check": "200ms",
                                              "cache_ttl": "10m"})
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def login(self, user, password, cafile=None):
        """'OK' or 'NO' for a fresh STARTTLS session."""
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
        try:
            m.starttls(ssl.create_default_context(cafile=cafile or
                                                  self.cert))
            try:
                m.login(user, password)
            except imaplib.IMAP4.error:
                return "NO"
            return "OK"
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def rewrite(self, users, extra=""):
        """Replace the file atomically, as an editor or a tool would."""
        tmp = self.passwd + ".tmp"
        rs.write_passwd(tmp, users)
        if extra:
            with open(tmp, "a") as f:
                f.write(extra)
        os.rename(tmp, self.passwd)

    def reloads(self, result):
        return self.store.metric("ringstore_passdb_reloads_total",
                                 result=result) or 0

    def test_edit_is_picked_up_without_a_signal(self):
        self.assertEqual(self.login(*NEW), "NO")
        self.rewrite(dict([OLD, NEW]))
        h.wait_for(lambda: self.reloads("ok") >= 1, what="tick reload")
        self.assertEqual(self.login(*NEW), "OK")
        self.assertEqual(self.login(*OLD), "OK")
        self.assertEqual(self.store.metric("ringstore_passdb_users"), 2)
        self.assertIn("passdb.reloaded", self.store.stderr())

    def test_broken_file_keeps_the_old_table(self):
        self.assertEqual(self.login(*OLD), "OK")
        self.rewrite(dict([NEW]), extra="broken line without fields\n")
        h.wait_for(lambda: self.reloads("refused") >= 1,
                   what="refused reload")
        # the whole new file is refused: NEW is not in, OLD still is
        self.assertEqual(self.login(*NEW), "NO")
        self.assertEqual(self.login(*OLD), "OK")
        log = self.store.stderr()
        self.assertIn("passdb.reload_failed", log)
        self.assertIn("%s:2:" % self.passwd, log)
        self.assertNotIn(OLD[1], log)
        self.assertNotIn(NEW[1], log)
        # a broken file is reported once per edit, not on every tick
        refused = self.reloads("refused")
        self.store.reload()
        h.wait_for(lambda: self.reloads("refused") == refused + 1,
                   what="SIGHUP retry")
        self.assertEqual(self.login(*OLD), "OK")

    def test_changed_password_beats_the_cache(self):
        self.assertEqual(self.login(*OLD), "OK")
        self.assertEqual(self.login(*OLD), "OK")
        hits = self.store.metric("ringstore_auth_cache_total",
                                 result="hit") or 0
        self.assertGreaterEqual(hits, 1)
        self.rewrite({OLD[0]: "changed-password-3"})
        self.store.reload()
        h.wait_for(lambda: self.reloads("ok") >= 1, what="reload")
        self.assertEqual(self.login(*OLD), "NO")
        self.assertEqual(self.login(OLD[0], "changed-password-3"), "OK")

    def test_metrics_count_verifications(self):
        self.login(*OLD)
        self.login(OLD[0], "wrong-password")
        self.login("nobody@example.test", "wrong-password")
        text = self.store.metrics_text()
        s = h.parse_metrics(text)
        self.assertGreaterEqual(h.metric(s, "ringstore_auth_requests_total"),
                                3)
        self.assertGreaterEqual(h.metric(s, "ringstore_auth_results_total",
                                         result="fail"), 2)
        self.assertGreaterEqual(h.metric(s, "ringstore_auth_results_total",
                                         result="ok"), 1)
        self.assertEqual(h.metric(s, "ringstore_auth_queue"), 0)
        self.assertEqual(h.metric(s, "ringstore_passdb_version"), 1)
        self.assertIsNotNone(h.metric(s, "ringstore_folder_cache_total",
                                      result="miss"))
        self.assertIsNotNone(h.metric(s, "ringstore_folder_cache_entries"))
        if os.path.exists("/usr/bin/promtool"):
            p = subprocess.run(["promtool", "check", "metrics"],
                               input=text.encode(), capture_output=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_sighup_swaps_the_certificate(self):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
        m.starttls(ssl.create_default_context(cafile=self.cert))
        m.login(*OLD)
        # new key and certificate written over the configured paths
        sub = os.path.join(self.dir, "next")
        os.mkdir(sub)
        cert2, key2 = h.make_cert(sub, "ec", stem="server")
        os.rename(key2, self.key)
        os.rename(cert2, self.cert)
        self.store.reload()
        h.wait_for(lambda: "reload.done" in self.store.stderr(),
                   what="reload.done")
        self.assertEqual(self.login(*OLD, cafile=self.cert), "OK")
        # the session begun under the old certificate goes on
        typ, _ = m.select("INBOX")
        self.assertEqual(typ, "OK")
        m.logout()


class ConfigTestCase(unittest.TestCase):

    def run_t(self, cfg):
        path = os.path.join(self.dir, "t.conf")
        with open(path, "w") as f:
            f.write(h.config_text(cfg))
        return subprocess.run([rs.RINGSTORE, "-t", "-c", path],
                              capture_output=True, text=True, timeout=30)

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), dict([OLD]))

    def test_good_file(self):
        p = self.run_t(rs.store_config(self.dir, 1, 2))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 users", p.stdout)

    def test_missing_master_user(self):
        cfg = rs.store_config(self.dir, 1, 2, auth={
            "master_users": ["ringgate@example.test"],
            "master_nets": ["127.0.0.0/8"]})
        p = self.run_t(cfg)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"t\.conf:\d+: auth\.master_users: "
                         r"'ringgate@example.test' is not in ")

    def test_broken_passwd_file(self):
        with open(os.path.join(self.dir, "passwd"), "a") as f:
            f.write("bad:{NOSUCH}x::::::\n")
        p = self.run_t(rs.store_config(self.dir, 1, 2))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("passwd:2:", p.stderr)


if __name__ == "__main__":
    unittest.main()
