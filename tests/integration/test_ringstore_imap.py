"""test_ringstore_imap.py - ringstore's IMAP server with Python's imaplib.

Each test class starts its own ringstore on free ports with a passwd-file
(SCRAM-SHA-256 keys) and a fresh mail root. Covered: greeting and
CAPABILITY before and after STARTTLS, LOGIN and AUTHENTICATE PLAIN good
and bad, cleartext login refused on an untrusted listener, bad input
(overlong line, NUL byte, unbalanced parentheses, too many bad commands)
answered BAD while another session keeps working, and the admin
listener's /metrics.
"""

import os
import re
import socket
import ssl
import time
import imaplib
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"


class StoreCase(unittest.TestCase):
    """A ringstore with STARTTLS (untrusted listener) per test."""

    tls = True

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: PASSWORD, "other@example.test": "secret"})
        certs = []
        if self.tls:
            self.cert, self.key = h.make_cert(self.dir, "ec", stem="server")
            certs = [(self.cert, self.key)]
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              certs=certs)
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def imap(self, starttls=None):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
        self.addCleanup(self._logout, m)
        if starttls if starttls is not None else self.tls:
            m.starttls(ssl.create_default_context(cafile=self.cert))
        return m

    @staticmethod
    def _logout(m):
        try:
            m.logout()
        except Exception:
            pass

    def login(self):
        m = self.imap()
        m.login(USER, PASSWORD)
        return m

    def raw(self):
        """A plain socket after the greeting, for byte-level abuse."""
        s = socket.create_connection(("127.0.0.1", self.store.port()),
                                     timeout=20)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        return s, f


class TestLogin(StoreCase):

    def test_greeting_and_capability(self):
        m = self.imap(starttls=False)
        caps = m.capabilities
        self.assertIn("STARTTLS", caps)
        self.assertIn("LOGINDISABLED", caps)
        self.assertNotIn("AUTH=PLAIN", caps)

    def test_login_refused_before_tls(self):
        m = self.imap(starttls=False)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login(USER, PASSWORD)
        self.assertIn("PRIVACYREQUIRED", str(e.exception))

    def test_login_good_and_bad(self):
        m = self.imap()
        self.assertIn("AUTH=PLAIN", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login(USER, "wrong")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("nobody@example.test", PASSWORD)
        typ, data = m.login(USER, PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertIn(b"UIDPLUS", data[0])
        self.assertEqual(m.noop()[0], "OK")
        # first login made the default folders
        md = os.path.join(self.dir, "mail", "example.test", "demo",
                          "Maildir")
        for folder in (".Drafts", ".Sent", ".Trash", ".Junk", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(md, folder)), folder)

    def test_authenticate_plain(self):
        m = self.imap()
        typ, _ = m.authenticate(
            "PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode())
        self.assertEqual(typ, "OK")
        m2 = self.imap()
        with self.assertRaises(imaplib.IMAP4.error):
            m2.authenticate("PLAIN",
                            lambda _: ("\0%s\0nope" % USER).encode())

    def test_id_enable_logout(self):
        m = self.login()
        typ, data = m.xatom("ID", '("name" "test")')
        self.assertEqual(typ, "OK")
        self.assertEqual(m.xatom("ENABLE", "CONDSTORE")[0], "OK")
        self.assertEqual(m.logout()[0], "BYE")

    def test_metrics(self):
        self.login()
        self.store.wait_metric("ringstore_imap_logins_total", 1,
                               result="ok")
        text = self.store.metrics_text()
        self.assertIn("ringstore_imap_sessions", text)


class TestBadInput(StoreCase):

    tls = False

    def test_bad_input_answered(self):
        s, f = self.raw()
        s.sendall(b"a1 NOOP (\r\n")
        self.assertTrue(f.readline().startswith(b"a1 BAD"))
        s.sendall(b"a2 NO\x00OP\r\n")
        self.assertIn(b"BAD", f.readline())
        s.sendall(b"a3 LOGIN " + b"x" * 20000 + b"\r\n")
        self.assertIn(b"BAD", f.readline())
        s.sendall(b"a4 FROB\r\n")
        self.assertTrue(f.readline().startswith(b"a4 BAD"))
        s.sendall(b"a5 NOOP\r\n")
        self.assertTrue(f.readline().startswith(b"a5 OK"))
        # another session is served meanwhile
        m = self.imap()
        m.login(USER, PASSWORD)
        self.assertEqual(m.noop()[0], "OK")

    def test_too_many_bad_commands_disconnect(self):
        s, f = self.raw()
        for i in range(5):
            s.sendall(b"x%d FROB\r\n" % i)
        lines = [f.readline() for _ in range(6)]
        self.assertTrue(lines[-1].startswith(b"* BYE"), lines)
        self.assertEqual(f.readline(), b"")

    def test_huge_literal_refused(self):
        s, f = self.raw()
        s.sendall(b"a1 LOGIN {999999999}\r\n")
        self.assertRegex(f.readline(), rb"^a1 (BAD|NO)")
        s.sendall(b"a2 NOOP\r\n")
        self.assertTrue(f.readline().startswith(b"a2 OK"))


class TestMailboxes(StoreCase):

    def test_select_examine_list(self):
        m = self.login()
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"0"]))
        self.assertEqual(m.untagged_responses.get("READ-WRITE"), [b""])
        self.assertTrue(m.untagged_responses.get("UIDVALIDITY"))
        typ, data = m.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK")
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        lines = b"\n".join(data)
        for name, attr in ((b"Drafts", b"\\Drafts"),
                           (b"Sent", b"\\Sent"), (b"Trash", b"\\Trash"),
                           (b"Junk", b"\\Junk")):
            self.assertRegex(lines, rb"\(.*" + attr.replace(b"\\", b"\\\\") +
                             rb".*\) \"/\" " + name)
        self.assertIn(b'"/" INBOX', lines)
        typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        special = m.untagged_responses.pop("LIST", [])
        self.assertEqual(len(special), 4, special)
        typ, data = m.list('""', '""')
        self.assertIn(b"\\Noselect", data[0])
        self.assertEqual(m.select("Nope")[0], "NO")

    def test_create_rename_delete_subscribe(self):
        m = self.login()
        self.assertEqual(m.create("Projects/Ringgate")[0], "OK")
        self.assertEqual(m.create("Projects/Ringgate")[0], "NO")
        self.assertEqual(m.create("Caf\u00e9".encode("utf-8").decode(
            "latin-1") if False else "Caf&AOk-")[0], "OK")
        typ, data = m.list('""', "*")
        names = b"\n".join(data)
        self.assertIn(b"Projects/Ringgate", names)
        self.assertIn(b"Caf&AOk-", names)
        self.assertIn(b"HasChildren", names)
        self.assertEqual(m.rename("Projects", "Work")[0], "OK")
        typ, data = m.list('""', "Work/%")
        self.assertIn(b"Work/Ringgate", b"".join(data))
        self.assertEqual(m.delete("Work")[0], "NO")  # has children
        self.assertEqual(m.delete("Work/Ringgate")[0], "OK")
        self.assertEqual(m.delete("INBOX")[0], "NO")
        self.assertEqual(m.subscribe("Work")[0], "OK")
        typ, data = m.lsub('""', "*")
        self.assertIn(b'"Work"', b"".join(data).replace(b" Work", b' "Work"'))
        self.assertEqual(m.unsubscribe("Work")[0], "OK")
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        self.assertRegex(data[0], rb"INBOX \(MESSAGES 0 UIDNEXT 1 "
                                  rb"UIDVALIDITY \d+ UNSEEN 0\)")
        typ, data = m.namespace()
        self.assertEqual(data[0], b'(("" "/")) NIL NIL')


MESSAGE = (b"From: Alice <alice@example.test>\r\n"
           b"To: demo@example.test\r\n"
           b"Subject: Hello ringstore\r\n"
           b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
           b"Message-ID: <1@example.test>\r\n"
           b"\r\n"
           b"First line of the body.\r\n"
           b"Second line.\r\n")


class TestMessages(StoreCase):

    tls = False

    def append(self, m, folder="INBOX", flags="", msg=MESSAGE):
        typ, data = m.append(folder, flags, None, msg)
        self.assertEqual(typ, "OK", data)
        match = __import__("re").search(rb"APPENDUID (\d+) (\d+)", data[0])
        self.assertIsNotNone(match, data)
        return int(match.group(1)), int(match.group(2))

    def test_append_fetch_same_bytes(self):
        m = self.login()
        uidv, uid = self.append(m)
        self.assertEqual(uid, 1)
        big = MESSAGE + b"x" * 70 + b"\r\n"
        big = big + (b"y" * 1022 + b"\r\n") * 5 * 1024
        uidv2, uid2 = self.append(m, msg=big)
        self.assertEqual((uidv2, uid2), (uidv, 2))
        self.assertEqual(m.select("INBOX")[1], [b"2"])
        typ, data = m.fetch("1", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], MESSAGE)
        self.assertIn(b"RFC822.SIZE %d" % len(MESSAGE), data[0][0])
        typ, data = m.uid("FETCH", "2", "(BODY.PEEK[]<1000.5000> UID)")
        self.assertEqual(data[0][1], big[1000:6000])
        typ, data = m.uid("FETCH", "2", "BODY.PEEK[]")
        self.assertEqual(data[0][1], big)
        typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE INTERNALDATE)")
        self.assertIn(b'"Hello ringstore"', data[0])
        self.assertIn(b'("TEXT" "PLAIN"', data[0].upper())
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(data[0][1], b"Subject: Hello ringstore\r\n\r\n")
        typ, data = m.fetch("1", "BODY[TEXT]")
        self.assertEqual(data[0][1], MESSAGE.split(b"\r\n\r\n", 1)[1])
        typ, data = m.fetch("1", "FLAGS")
        self.assertIn(b"\\Seen", data[0])
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("9", "FLAGS")

    def test_store_expunge_and_restart(self):
        m = self.login()
        self.append(m, flags="(\\Flagged)")
        self.append(m)
        self.append(m)
        m.select("INBOX")
        uidvalidity = m.untagged_responses["UIDVALIDITY"][0]
        typ, data = m.store("1", "+FLAGS", "(\\Seen \\Answered)")
        self.assertIn(b"\\Answered", data[0])
        self.assertIn(b"\\Flagged", data[0])
        typ, data = m.uid("STORE", "3", "+FLAGS.SILENT", "(\\Deleted)")
        self.assertEqual(typ, "OK")
        typ, data = m.expunge()
        self.assertEqual(data, [b"3"])
        self.assertEqual(m.noop()[0], "OK")
        m.logout()
        # restart: flags and UIDVALIDITY survive
        self.store.stop_checked()
        self.store.start(self)
        m = self.login()
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"2"])
        self.assertEqual(m.untagged_responses["UIDVALIDITY"][0], uidvalidity)
        typ, data = m.fetch("1:*", "(UID FLAGS)")
        self.assertRegex(data[0], rb"UID 1 FLAGS \(\\Seen \\Answered "
                                  rb"\\Flagged\)")
        self.assertRegex(data[1], rb"UID 2 FLAGS \(\)")
        self.assertEqual(m.unselect()[0] if hasattr(m, "unselect")
                         else m._simple_command("UNSELECT")[0], "OK")
        m.select("INBOX")
        self.assertEqual(m.close()[0], "OK")

    def test_append_errors(self):
        m = self.login()
        typ, data = m.append("Nope", "", None, MESSAGE)
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        s, f = self.raw()
        s.sendall(b"a LOGIN demo@example.test ringgate-demo-pw\r\n")
        self.assertTrue(f.readline().startswith(b"a OK"))
        s.sendall(b"b APPEND INBOX {999999999}\r\n")
        self.assertRegex(f.readline(), rb"^b (NO|BAD)")
        s.sendall(b"c APPEND INBOX (\\Seen) {5+}\r\nhello\r\n")
        self.assertRegex(f.readline(), rb"^c OK \[APPENDUID \d+ 1\]")


    def test_copy_move_copyuid(self):
        m = self.login()
        for _ in range(4):
            self.append(m)
        m.select("INBOX")
        typ, data = m.copy("1:2", "Trash")
        self.assertEqual(typ, "OK", data)
        match = re.search(rb"COPYUID (\d+) 1:2 1:2", data[0])
        self.assertIsNotNone(match, data)
        typ, data = m._simple_command("UID", "COPY", "4", "Trash")
        self.assertRegex(data[0], rb"\[COPYUID \d+ 4 3\]")
        typ, data = m.copy("1", "Nope")
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        typ, data = m._simple_command("MOVE", "1", "Nope")
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        # MOVE 2:3: EXPUNGEs in descending order, COPYUID on the OK
        typ, data = m._simple_command("MOVE", "2:3", "Junk")
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0], rb"\[COPYUID \d+ 2:3 1:2\] MOVE")
        self.assertEqual(m.response("EXPUNGE")[1], [b"3", b"2"])
        typ, data = m._simple_command("UID", "MOVE", "4", "Junk")
        self.assertRegex(data[0], rb"\[COPYUID \d+ 4 3\]")
        self.assertEqual(m.response("EXPUNGE")[1], [b"2"])
        typ, data = m.fetch("1:*", "UID")
        self.assertEqual(data, [b"1 (UID 1)"])
        self.assertEqual(m.select("Junk")[1], [b"3"])
        self.assertEqual(m.select("Trash")[1], [b"3"])
        m.select("INBOX", readonly=True)
        typ, data = m._simple_command("MOVE", "1", "Junk")
        self.assertEqual(typ, "NO")
        self.assertIn(b"MOVE", m.capability()[1][0])

if __name__ == "__main__":
    unittest.main()
