"""test_ringstore_conformance.py - smaller conformance fixes (issue 9,
item 5), each as a conformance run by an outside client found it:

- SEARCH FROM/TO/CC/BCC match the parsed addresses (RFC 3501: the
  envelope's field), so "<user-from (comment)@ (comment) domain.org>" is
  found by FROM user-from@domain.org, while HEADER FROM still searches
  the raw text;
- ID before login takes RFC 2971's full size (30 pairs of 30-octet
  fields and 1024-octet values, quoted with every byte escaped, or as
  literals) while every other command before login keeps the small line
  limit;
- a passwd-file user without "@domain" (who could never log in) is
  refused by "ringstore -t" and at start with file:line; master users,
  who never own a mailbox, may omit the domain.
"""

import imaplib
import os
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD


class TestAddressSearch(rs.StoreTestCase):

    MESSAGES = [
        b"From: <user-from (comment)@ (comment) domain.org>\r\n"
        b"To: Pete(A nice \\) chap) <pete@silly.test(his host)>\r\n"
        b"Subject: one\r\n\r\nbody\r\n",
        b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n"
        b"Cc: \"john q\"@quoted.test, team: a@x.test, b@x.test;\r\n"
        b"Bcc: a (c) . b@dots.test\r\n"
        b"Subject: mail for user-from@domain.org\r\n\r\nbody\r\n",
    ]

    def test_from_to_cc_bcc_match_addresses(self):
        m = self.login()
        for msg in self.MESSAGES:
            self.assertEqual(m.append("INBOX", None, None, msg)[0], "OK")
        m.select("INBOX")
        cases = [
            ("FROM user-from@domain.org", "1"),
            ("FROM USER-FROM@DOMAIN.ORG", "1"),
            ("FROM from@domain", "1"),
            ("FROM comment", ""),
            ('TO "Pete <pete@silly.test>"', "1"),
            ("TO pete@silly.test", "1"),
            ("TO chap", ""),
            ("FROM pirard@vm1.ulg.ac.be", "2"),
            ('FROM "Pirard <PIRARD@"', "2"),
            ("FROM =?ISO", ""),
            ('CC "john q@quoted.test"', "2"),
            ("CC team", "2"),
            ("CC b@x.test", "2"),
            ("BCC a.b@dots.test", "2"),
            # not an address search: the raw text of the field
            ('HEADER FROM "(comment)"', "1"),
            ("HEADER FROM user-from@domain.org", ""),
            ("SUBJECT user-from@domain.org", "2"),
            ("OR FROM user-from@domain.org BCC dots.test", "1 2"),
        ]
        for crit, want in cases:
            typ, data = m.search(None, crit)
            self.assertEqual((typ, data), ("OK", [want.encode()]), crit)
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", "FROM",
                          "user-from@domain.org")
        self.assertEqual(data, [b"1"])


class TestIdBeforeLogin(rs.StoreTestCase):

    @staticmethod
    def id_command(tag, escaped=True):
        """RFC 2971's largest ID: 30 pairs, 30-octet fields, 1024-octet
        values; escaped, every byte of them is a quoted pair."""
        pairs = []
        for k in range(30):
            field = (b"x-field-%02d-" % k).ljust(30, b"f")
            value = (b"\\" if escaped else b"v") * 1024
            if escaped:
                field = field[:15] + b'\\"' * 7 + field[29:]
                value = b'\\\\' * 1024
            pairs.append(b'"%s" "%s"' % (field, value))
        return tag + b" ID (" + b" ".join(pairs) + b")\r\n"

    def test_full_size_id_before_login(self):
        s, f = self.raw()
        cmd = self.id_command(b"a")
        self.assertGreater(len(cmd), 60000)
        s.sendall(cmd)
        lines = []
        self.assertTrue(self.tagged(f, b"a", lines).startswith(b"a OK"))
        self.assertTrue(lines[0].startswith(b"* ID ("), lines)
        # as literals, synchronizing
        s.sendall(b'b ID ("name" {1024}\r\n')
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"n" * 1024 + b' "version" {4}\r\n')
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"1.23)\r\n")
        self.assertTrue(self.tagged(f, b"b").startswith(b"b OK"))
        # the session goes on and logs in
        s.sendall(b"c LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.assertTrue(self.tagged(f, b"c").startswith(b"c OK"))

    def test_other_commands_stay_small(self):
        s, f = self.raw()
        # limits.line_max_login is 8k: the same bytes as another command
        # are too long, and so is an ID beyond RFC 2971's size
        for tag, line in ((b"a", b"a NOOP " + b"x" * 9000 + b"\r\n"),
                          (b"b", b"b LOGIN " + b"u" * 9000 + b" p\r\n"),
                          (b"c", b"c IDX " + b"x" * 9000 + b"\r\n"),
                          (b"d", b'd ID ("a" "' + b"x" * 70000 +
                           b'")\r\n')):
            s.sendall(line)
            reply = self.tagged(f, tag)
            self.assertTrue(reply.startswith(tag + b" BAD"), reply)
            self.assertIn(b"too long", reply)
        s.sendall(b"e CAPABILITY\r\n")
        self.assertTrue(self.tagged(f, b"e").startswith(b"e OK"))


class TestUserWithoutDomain(unittest.TestCase):
    """A passwd-file name without @domain could authenticate and never
    get a mailbox: -t, start and reload refuse the file at its line."""

    def setUp(self):
        self.dir = h.temp_dir(self)
        self.passwd = os.path.join(self.dir, "passwd")
        self.cfg = rs.store_config(
            self.dir, h.free_port(), h.free_port(),
            auth={"master_users": ["ringgate-master"]})
        self.store = rs.Ringstore(self.dir, self.cfg)

    def write(self, users):
        rs.write_passwd(self.passwd, users)

    def check(self):
        self.store.write_config()
        p = h.run([rs.RINGSTORE, "-t", "-c", self.store.conf_path],
                  timeout=30, check=False)
        return p.returncode, p.stdout + p.stderr

    def test_check_refuses_name_without_domain(self):
        self.write({USER: PASSWORD, "ringgate-master": "m", "bob": "b"})
        code, out = self.check()
        self.assertEqual(code, 1, out)
        self.assertIn("%s:3: user bob: no @domain" % self.passwd, out)
        # the daemon refuses to start the same way
        with self.assertRaises(AssertionError) as cm:
            self.store.start()
        self.assertIn("%s:3: user bob" % self.passwd, str(cm.exception))
        for bad, why in (("a@b@c", "more than one"), ("@x.test", "empty"),
                         ("u@", "empty"), (".u@x.test", "leading"),
                         ("u@..", "'..'")):
            self.write({USER: PASSWORD, bad: "x"})
            code, out = self.check()
            self.assertEqual(code, 1, out)
            self.assertIn("%s:2: user %s:" % (self.passwd, bad), out)
            self.assertIn(why, out)

    def test_master_may_omit_domain_and_reload_keeps_old_table(self):
        self.write({USER: PASSWORD, "ringgate-master": "m"})
        code, out = self.check()
        self.assertEqual(code, 0, out)
        self.assertIn("test is successful (2 users)", out)
        self.store.start(self)
        # an edit that adds a name without a domain is refused; the old
        # table stays and its users still log in
        self.write({USER: PASSWORD, "ringgate-master": "m", "carol": "c"})
        self.store.reload()
        h.wait_for(lambda: "user carol: no @domain" in self.store.stderr(),
                   what="the refused reload in the log")
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=30)
        self.addCleanup(rs.logout_quietly, m)
        self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
        self.assertIn("passdb.reload_failed", self.store.stderr())


if __name__ == "__main__":
    unittest.main()
