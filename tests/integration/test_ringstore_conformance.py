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
import socket
import subprocess
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"


class StoreCase(unittest.TestCase):
    limits = {}

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              limits=self.limits)
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=30)
        self.addCleanup(rs.logout_quietly, m)
        m.login(USER, PASSWORD)
        return m

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.store.port()),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.addCleanup(f.close)
        self.assertTrue(f.readline().startswith(b"* OK"))
        return s, f

    def tagged(self, f, tag, untagged=None):
        while True:
            line = f.readline()
            self.assertTrue(line, "connection closed")
            if line.startswith(tag + b" "):
                return line
            if untagged is not None:
                untagged.append(line)


class TestAddressSearch(StoreCase):

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


if __name__ == "__main__":
    unittest.main()
