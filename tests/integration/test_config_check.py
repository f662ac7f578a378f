"""test_config_check.py - `ringgate -t`: a config is checked, never run.

A valid file exits 0 with the nginx-style success line; a bad one exits 1
with an error that starts with FILE:LINE: and names the key, so an
operator can go straight to the typo. -t must not bind ports or write a
pid file. Also the shipped example config must parse.
"""

import os
import re
import unittest

import harness as h


class ConfigCheck(unittest.TestCase):

    def setUp(self):
        if not os.access(h.RINGGATE, os.X_OK):
            self.fail("%s is not built" % h.RINGGATE)
        self.dir = h.temp_dir(self)
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
        self.path = os.path.join(self.dir, "ringgate.conf")

    def config(self, **overrides):
        relays = [{"name": "imaps", "listen": "127.0.0.1:%d" % h.free_port(),
                   "tls": True, "alpn": "imap",
                   "upstream": "127.0.0.1:%d" % h.free_port()}]
        return h.base_config([(self.cert, self.key)], relays, h.free_port(),
                             **overrides)

    def check(self, text):
        with open(self.path, "w") as f:
            f.write(text)
        p = h.run([h.RINGGATE, "-t", "-c", self.path], timeout=30,
                  check=False)
        return p.returncode, p.stdout + p.stderr

    def assert_error_at(self, text, needle, *words):
        """-t fails, naming FILE:LINE (the line holding needle) and each
        of words."""
        line = h.line_of(text, needle)
        code, out = self.check(text)
        self.assertEqual(code, 1, out)
        self.assertIn("%s:%d:" % (self.path, line), out)
        for w in words:
            self.assertIn(w, out)
        return out

    def test_valid_config(self):
        pid = os.path.join(self.dir, "ringgate.pid")
        cfg = self.config(daemon={"pid_file": pid})
        code, out = self.check(h.config_text(cfg))
        self.assertEqual(code, 0, out)
        self.assertIn("ringgate: configuration file %s test is successful"
                      % self.path, out)
        self.assertFalse(os.path.exists(pid), "-t wrote the pid file")

    def test_valid_config_with_rsa_and_ecdsa(self):
        rsa = h.make_cert(self.dir, "rsa", stem="rsa")
        cfg = self.config()
        cfg["tls"]["certificates"].append({"cert": rsa[0], "key": rsa[1]})
        code, out = self.check(h.config_text(cfg))
        self.assertEqual(code, 0, out)

    def test_misspelled_relay_key(self):
        cfg = self.config()
        r = cfg["relay"][0]
        r["lisen"] = r.pop("listen")
        text = h.config_text(cfg)
        out = self.assert_error_at(text, "lisen =", "lisen")
        self.assertRegex(out, r"did you mean '?listen'?")

    def test_misspelled_daemon_key(self):
        cfg = self.config()
        cfg["daemon"]["drain_timout"] = "5s"
        text = h.config_text(cfg)
        self.assert_error_at(text, "drain_timout =", "drain_timout")

    def test_unknown_top_level_group(self):
        text = h.config_text(self.config()) + "\nlimitz = { a = 1; };\n"
        self.assert_error_at(text, "limitz =", "limitz")

    def test_bad_duration_value(self):
        cfg = self.config()
        cfg["limits"]["idle_timeout"] = "soon"
        text = h.config_text(cfg)
        self.assert_error_at(text, "idle_timeout =", "idle_timeout")

    def test_bad_address(self):
        cfg = self.config()
        cfg["relay"][0]["upstream"] = "mail.example.test:143"
        text = h.config_text(cfg)
        self.assert_error_at(text, "upstream =", "upstream")

    def test_bad_alpn_choice(self):
        cfg = self.config()
        cfg["relay"][0]["alpn"] = "http"
        text = h.config_text(cfg)
        self.assert_error_at(text, "alpn =", "alpn")

    def test_syntax_error_has_line(self):
        text = h.config_text(self.config())
        lines = text.splitlines()
        lines.insert(3, "  log_level = ;")
        text = "\n".join(lines) + "\n"
        code, out = self.check(text)
        self.assertEqual(code, 1, out)
        self.assertIn("%s:4:" % self.path, out)

    def test_missing_certificate_file_named(self):
        missing = os.path.join(self.dir, "no-such.crt")
        cfg = self.config()
        cfg["tls"]["certificates"][0]["cert"] = missing
        code, out = self.check(h.config_text(cfg))
        self.assertEqual(code, 1, out)
        self.assertIn(missing, out)

    def test_missing_key_file_named(self):
        missing = os.path.join(self.dir, "no-such.key")
        cfg = self.config()
        cfg["tls"]["certificates"][0]["key"] = missing
        code, out = self.check(h.config_text(cfg))
        self.assertEqual(code, 1, out)
        self.assertIn(missing, out)

    def test_missing_config_file(self):
        p = h.run([h.RINGGATE, "-t", "-c",
                   os.path.join(self.dir, "absent.conf")], check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("absent.conf", p.stdout + p.stderr)

    def test_example_config_parses(self):
        """docs/examples/ringgate.conf, with its certificate paths pointed
        at real files, passes -t: the example stays in step with the
        schema."""
        src = os.path.join(h.SOURCE_DIR, "docs", "examples", "ringgate.conf")
        with open(src) as f:
            text = f.read()
        rsa = h.make_cert(self.dir, "rsa", stem="rsa")
        users = os.path.join(self.dir, "users.passwd")
        master = os.path.join(self.dir, "master.pw")
        with open(users, "w") as f:
            f.write("bob@example.org:{PLAIN}x::::::\n")
        with open(master, "w") as f:
            f.write("master-secret\n")
        text = (text.replace("/etc/ringgate/ecdsa.crt", self.cert)
                .replace("/etc/ringgate/ecdsa.key", self.key)
                .replace("/etc/ringgate/rsa.crt", rsa[0])
                .replace("/etc/ringgate/rsa.key", rsa[1])
                .replace("/etc/ringgate/users.passwd", users)
                .replace("/etc/ringgate/master.pw", master))
        code, out = self.check(text)
        self.assertEqual(code, 0, out)

    def test_version_flag(self):
        p = h.run([h.RINGGATE, "-V"], check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(re.search(r"\d+\.\d+\.\d+", p.stdout + p.stderr),
                        p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
