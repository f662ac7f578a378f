"""test_ringstore_imap.py - ringstore's IMAP server with Python's imaplib.

Each test class starts its own ringstore on free ports with a passwd-file
(SCRAM-SHA-256 keys) and a fresh mail root. Covered: greeting and
CAPABILITY before and after STARTTLS, LOGIN and AUTHENTICATE PLAIN good
and bad, cleartext login refused on an untrusted listener, bad input
(overlong line, NUL byte, unbalanced parentheses, invalid sequence sets,
too many bad commands)
answered BAD while another session keeps working, the admin
listener's /metrics, COPY/MOVE with COPYUID, TRYCREATE and MOVE's
EXPUNGEs, and SEARCH / UID SEARCH with every key over a small fixture
folder plus malformed search programs answered BAD, and IDLE: EXISTS,
FETCH FLAGS and EXPUNGE pushed within a second for changes made by
another session and for a file dropped into new/ by another program.
Master users: AUTHENTICATE PLAIN with an authzid from a master on a
master net logs in as that user; a non-master, a master outside
master_nets, a wrong master password and an unknown target are refused.
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
        self.addCleanup(rs.logout_quietly, m)
        if starttls if starttls is not None else self.tls:
            m.starttls(ssl.create_default_context(cafile=self.cert))
        return m

    def login(self):
        m = self.imap()
        m.login(USER, PASSWORD)
        return m

    def raw(self):
        """A plain socket after the greeting, for byte-level abuse."""
        return rs.raw_connect(self, self.store.port(), timeout=20)


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


MASTER, MASTER_PW = "ringgate-master", "master-secret"


class MasterCase(StoreCase):
    """A trusted listener with a master user; master_nets per class."""

    tls = False
    nets = ["127.0.0.0/8", "::1/128"]

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: PASSWORD, "other@example.test": "secret",
                         MASTER: MASTER_PW})
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              auth={"master_users": [MASTER],
                                    "master_nets": self.nets})
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def plain(self, authzid, authcid, password):
        m = self.imap()
        resp = ("%s\0%s\0%s" % (authzid, authcid, password)).encode()
        return m, m.authenticate("PLAIN", lambda _: resp)


class TestMaster(MasterCase):

    def test_master_acts_as_user(self):
        u = self.login()
        u.append("INBOX", None, None,
                 b"Subject: for demo\r\n\r\nhello\r\n")
        m, (typ, _) = self.plain(USER, MASTER, MASTER_PW)
        self.assertEqual(typ, "OK")
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], b"1")
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"for demo", data[0][1])

    def test_non_master_refused(self):
        with self.assertRaises(imaplib.IMAP4.error) as e:
            self.plain(USER, "other@example.test", "secret")
        self.assertIn("AUTHORIZATIONFAILED", str(e.exception))
        self.store.wait_metric("ringstore_imap_master_refused_total", 1)

    def test_wrong_master_password(self):
        with self.assertRaises(imaplib.IMAP4.error) as e:
            self.plain(USER, MASTER, "wrong")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))

    def test_unknown_target(self):
        with self.assertRaises(imaplib.IMAP4.error) as e:
            self.plain("nobody@example.test", MASTER, MASTER_PW)
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))


class TestMasterOtherNet(MasterCase):

    nets = ["10.0.0.0/8"]

    def test_master_outside_nets_refused(self):
        with self.assertRaises(imaplib.IMAP4.error) as e:
            self.plain(USER, MASTER, MASTER_PW)
        self.assertIn("AUTHORIZATIONFAILED", str(e.exception))


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

    def test_invalid_sequence_sets(self):
        bad = [b"FETCH 0 FLAGS", b"FETCH 0:* FLAGS", b"FETCH 1:abc FLAGS",
               b"FETCH 1,,2 FLAGS", b"FETCH , FLAGS", b"FETCH 1: FLAGS",
               b"FETCH -1 FLAGS", b"UID FETCH 4294967296 FLAGS",
               b"FETCH 99999999999999999999 FLAGS",
               b"STORE 1:2:3 +FLAGS (\\Seen)", b"COPY *:0x1 INBOX",
               b"SEARCH 1..2", b"UID SEARCH UID 1:*:2"]
        # bad_commands is 5 here: a fresh session for every three
        for start in range(0, len(bad), 3):
            cmd = self.selected_session()
            for i, line in enumerate(bad[start:start + 3]):
                tag = b"b%d" % (start + i)
                self.assertRegex(cmd(tag, line), rb"^b\d+ (BAD|NO) \S",
                                 line)
            # numbers past the mailbox are legal and select nothing
            self.assertTrue(cmd(b"u", b"UID FETCH 7:9 FLAGS"
                                ).startswith(b"u OK"))
            self.assertTrue(cmd(b"n", b"NOOP").startswith(b"n OK"))
        m = self.login()
        self.assertEqual(m.noop()[0], "OK")

    def selected_session(self):
        """A raw session logged in with INBOX selected (holding one
        message); returns cmd(tag, line) -> the tagged reply line."""
        s, f = self.raw()

        def cmd(tag, line):
            s.sendall(tag + b" " + line + b"\r\n")
            while True:
                r = f.readline()
                self.assertNotEqual(r, b"", "connection closed")
                if r.startswith(tag + b" "):
                    return r

        self.assertTrue(cmd(b"l", b"LOGIN %s %s" % (
            USER.encode(), PASSWORD.encode())).startswith(b"l OK"))
        self.assertTrue(cmd(b"p", b"APPEND INBOX {4+}\r\nHi\r\n"
                            ).startswith(b"p OK"))
        self.assertTrue(cmd(b"s", b"SELECT INBOX").startswith(b"s OK"))
        return cmd

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
        # MOVE 2:3: EXPUNGEs in descending order, COPYUID on an untagged
        # OK and again on the tagged one
        m.response("COPYUID")
        typ, data = m._simple_command("MOVE", "2:3", "Junk")
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0], rb"\[COPYUID \d+ 2:3 1:2\] MOVE")
        codes = m.response("COPYUID")[1]
        self.assertEqual(len(codes), 2, codes)
        self.assertRegex(codes[0], rb"^\d+ 2:3 1:2$")
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
        # on the wire: untagged COPYUID, then the EXPUNGE, then the OK
        s, f = self.raw()
        s.sendall(b"a LOGIN demo@example.test ringgate-demo-pw\r\n"
                  b"b SELECT Trash\r\n")
        while not f.readline().startswith(b"b OK"):
            pass
        s.sendall(b"c UID MOVE 2 INBOX\r\n")
        self.assertRegex(f.readline(), rb"^\* OK \[COPYUID \d+ 2 5\]")
        self.assertEqual(f.readline(), b"* 2 EXPUNGE\r\n")
        self.assertEqual(f.readline(), b"* 2 EXISTS\r\n")
        # the imaplib session selected Trash first: \Recent is its own
        self.assertEqual(f.readline(), b"* 0 RECENT\r\n")
        self.assertRegex(f.readline(), rb"^c OK \[COPYUID \d+ 2 5\]")

    def search_fixture(self, m):
        """Four messages (seq 1..4, UID 2..5) that each answer different
        keys; UID 1 was expunged so UIDs and sequence numbers differ."""
        msgs = [
            ("(\\Deleted)", "01-Jan-2019 00:00:00 +0000",
             b"From: nobody@example.test\r\nSubject: gone\r\n\r\nx\r\n"),
            ("(\\Seen \\Answered)", "03-Feb-2020 10:00:00 +0000",
             b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
             b"Cc: carol@example.test\r\nSubject: Quarterly report\r\n"
             b"Date: Mon, 3 Feb 2020 10:00:00 +0000\r\n\r\n"
             b"The numbers are good.\r\n"),
            ("(\\Flagged)", "10-Mar-2021 12:00:00 +0000",
             b"From: bob@example.test\r\nTo: alice@example.test\r\n"
             b"Bcc: dave@example.test\r\nSubject: Lunch?\r\nX-Priority: 1\r\n"
             b"Date: Wed, 10 Mar 2021 12:00:00 +0100\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n"
             b"c2VjcmV0IHBpenphIHJlY2lwZQ==\r\n" + b"\r\n" * 1000),
            ("(\\Draft \\Deleted)", "15-Apr-2022 08:00:00 +0000",
             b"From: carol@example.test\r\nTo: alice@example.test\r\n"
             b"Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=\r\n"
             b"Date: 15 Apr 2022 08:00:00 -0700\r\n\r\nSee you there.\r\n"),
            ("", "01-Jan-2023 00:00:00 +0000",
             b"From: dave@example.test\r\nSubject: new year\r\n"
             b"Date: Sun, 1 Jan 2023 00:00:00 +0000\r\n\r\nhello\r\n"),
        ]
        m.create("Search")
        for k, (flags, date, msg) in enumerate(msgs):
            if k == len(msgs) - 1:
                # the first four have been seen by a read-write session
                # (\Recent is gone), the last one has not
                m.select("Search")
                m.select("INBOX")
            typ, data = m.append("Search", flags, '"%s"' % date, msg)
            self.assertEqual(typ, "OK", data)
        m.select("Search")
        m.uid("EXPUNGE", "1")

    def test_search_keys(self):
        m = self.login()
        self.search_fixture(m)
        cases = [
            ("ALL", "1 2 3 4"), ("2:3", "2 3"), ("2:*", "2 3 4"),
            ("UID 1:2,5", "1 4"), ("ANSWERED", "1"),
            ("UNANSWERED", "2 3 4"), ("DELETED", "3"),
            ("UNDELETED", "1 2 4"), ("DRAFT", "3"), ("UNDRAFT", "1 2 4"),
            ("FLAGGED", "2"), ("UNFLAGGED", "1 3 4"), ("SEEN", "1"),
            ("UNSEEN", "2 3 4"), ("RECENT", "4"), ("NEW", "4"),
            ("OLD", "1 2 3"), ("NOT RECENT", "1 2 3"),
            ("FROM alice", "1"), ("FROM ALICE", "1"), ("TO alice", "2 3"),
            ("CC carol", "1"), ("BCC dave", "2"),
            ('SUBJECT "quarterly REPORT"', "1"), ("SUBJECT meeting", "3"),
            ('HEADER X-Priority 1', "2"), ('HEADER x-priority ""', "2"),
            ("BODY pizza", "2"), ("BODY numbers", "1"), ("BODY alice", ""),
            ("TEXT alice", "1 2 3"), ('TEXT "you there"', "3"),
            ("BEFORE 1-Jan-2021", "1"), ("ON 10-Mar-2021", "2"),
            ("SINCE 15-Apr-2022", "3 4"), ("SENTBEFORE 1-Jan-2021", "1"),
            ("SENTON 15-Apr-2022", "3"), ("SENTSINCE 10-Mar-2021", "2 3 4"),
            ("LARGER 1000", "2"), ("SMALLER 1000", "1 3 4"),
            ("NOT SEEN", "2 3 4"), ("OR FLAGGED DRAFT", "2 3"),
            ("(FLAGGED FROM bob)", "2"), ("FLAGGED FROM alice", ""),
            ("OR (SEEN ANSWERED) NOT DELETED", "1 2 4"),
            ("NOT (OR 1 UID 5)", "2 3"), ("KEYWORD $Junk", ""),
        ]
        for crit, want in cases:
            typ, data = m.search(None, crit)
            self.assertEqual((typ, data), ("OK", [want.encode()]), crit)
        typ, data = m.search("UTF-8", "FROM alice")
        self.assertEqual(data, [b"1"])
        typ, data = m.search("US-ASCII", "ALL")
        self.assertEqual(data, [b"1 2 3 4"])
        typ, data = m.search("KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"BADCHARSET", data[0])
        typ, data = m.uid("SEARCH", "FLAGGED")
        self.assertEqual(data, [b"3"])
        typ, data = m.uid("SEARCH", "OR 1 UID 5")
        self.assertEqual(data, [b"2 5"])
        # nothing was read as a side effect: still unseen
        self.assertEqual(m.search(None, "SEEN")[1], [b"1"])

    def test_search_bad_syntax(self):
        m = self.login()
        self.search_fixture(m)
        for crit in ("FOO", "LARGER x", "BEFORE 32-Foo-2020", "OR SEEN",
                     "NOT", "FROM", "HEADER X-Priority", "()", "1:x",
                     "UID", "ON 1-Feb-2020x", "CHARSET"):
            with self.assertRaises(imaplib.IMAP4.error, msg=crit):
                m.search(None, crit)
        s, f = self.raw()
        s.sendall(b"a LOGIN demo@example.test ringgate-demo-pw\r\n")
        self.assertTrue(f.readline().startswith(b"a OK"))
        s.sendall(b"b SEARCH ALL\r\n")
        self.assertTrue(f.readline().startswith(b"b BAD"))
        s.sendall(b"c SELECT Search\r\n")
        while not (line := f.readline()).startswith(b"c "):
            pass
        self.assertTrue(line.startswith(b"c OK"), line)
        s.sendall(b"d SEARCH (SEEN\r\n")
        self.assertTrue(f.readline().startswith(b"d BAD"))
        s.sendall(b"e SEARCH\r\n")
        self.assertTrue(f.readline().startswith(b"e BAD"))
        s.sendall(b"f UID SEARCH SUBJECT {6}\r\n")
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"Lunch? FLAGGED\r\n")
        self.assertEqual(f.readline(), b"* SEARCH 3\r\n")
        self.assertTrue(f.readline().startswith(b"f OK"))


class TestIdle(StoreCase):
    """IDLE over a raw socket (imaplib has no IDLE before 3.14); the
    changes come from an imaplib session, which with two workers may well
    run on the other loop, and from a file written into new/."""

    tls = False

    def idler(self):
        s, f = self.raw()
        s.settimeout(5)
        s.sendall(b"a LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.until(f, b"a ")
        s.sendall(b"b SELECT INBOX\r\n")
        line = self.until(f, b"b ")
        self.assertTrue(line.startswith(b"b OK"), line)
        return s, f

    def until(self, f, prefix):
        """Read lines until one starts with prefix; return it."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = f.readline()
            self.assertTrue(line, "connection closed")
            if line.startswith(prefix):
                return line
        self.fail("no %r line" % prefix)

    def pushed(self, f, pattern):
        """The next untagged line, which must come within a second."""
        start = time.monotonic()
        line = f.readline()
        self.assertLess(time.monotonic() - start, 1.0, line)
        self.assertRegex(line, pattern)
        return line

    def test_idle_pushes_changes(self):
        other = self.login()
        self.assertEqual(other.append("INBOX", "", None, MESSAGE)[0], "OK")
        s, f = self.idler()
        s.sendall(b"c IDLE\r\n")
        self.assertEqual(f.readline(), b"+ idling\r\n")
        # another session appends
        self.assertEqual(other.append("INBOX", "", None, MESSAGE)[0], "OK")
        self.pushed(f, rb"^\* 2 EXISTS\r\n$")
        # RECENT comes with EXISTS; this session saw both first
        self.pushed(f, rb"^\* 2 RECENT\r\n$")
        # another session changes flags
        other.select("INBOX")
        self.assertEqual(other.store("1", "+FLAGS.SILENT",
                                     "(\\Seen \\Deleted)")[0], "OK")
        # (\Recent is this session's own: it selected first)
        self.pushed(f, rb"^\* 1 FETCH \(FLAGS \(\\Seen \\Deleted"
                       rb"( \\Recent)?\) UID 1\)\r\n$")
        # another session expunges
        self.assertEqual(other.expunge()[0], "OK")
        self.pushed(f, rb"^\* 1 EXPUNGE\r\n$")
        self.pushed(f, rb"^\* 1 EXISTS\r\n$")
        self.pushed(f, rb"^\* 1 RECENT\r\n$")
        # a delivery by another program: tmp/ then rename into new/
        box = os.path.join(self.dir, "mail", "example.test", "demo",
                           "Maildir")
        name = "%d.M1P%d.idle-test" % (int(time.time()), os.getpid())
        with open(os.path.join(box, "tmp", name), "wb") as out:
            out.write(MESSAGE)
        os.rename(os.path.join(box, "tmp", name),
                  os.path.join(box, "new", name))
        self.pushed(f, rb"^\* 2 EXISTS\r\n$")
        self.pushed(f, rb"^\* 2 RECENT\r\n$")
        # DONE ends it with the tagged OK; the session goes on
        s.sendall(b"DONE\r\n")
        self.assertTrue(f.readline().startswith(b"c OK"))
        s.sendall(b"d FETCH 2 (UID)\r\n")
        self.assertRegex(f.readline(), rb"^\* 2 FETCH \(UID 3\)")
        self.assertTrue(f.readline().startswith(b"d OK"))

    def test_idle_burst_and_bad_line(self):
        s, f = self.idler()
        s.sendall(b"c IDLE\r\n")
        self.assertEqual(f.readline(), b"+ idling\r\n")
        s.sendall(b"NOT DONE\r\n")
        self.assertTrue(f.readline().startswith(b"* BAD"))
        box = os.path.join(self.dir, "mail", "example.test", "demo",
                           "Maildir")
        for i in range(100):
            name = "%d.M%dP%d.burst" % (int(time.time()), i, os.getpid())
            with open(os.path.join(box, "tmp", name), "wb") as out:
                out.write(MESSAGE)
            os.rename(os.path.join(box, "tmp", name),
                      os.path.join(box, "new", name))
        # however the burst was coalesced, the last EXISTS counts all
        deadline = time.monotonic() + 3
        line = b""
        while line != b"* 100 EXISTS\r\n" and time.monotonic() < deadline:
            line = f.readline()
            self.assertRegex(line, rb"^\* \d+ (EXISTS|RECENT)\r\n$")
        self.assertEqual(line, b"* 100 EXISTS\r\n")
        self.assertEqual(f.readline(), b"* 100 RECENT\r\n")
        s.sendall(b"done\r\n")
        self.assertTrue(f.readline().startswith(b"c OK"))

    def test_idle_in_capability_and_auth_state(self):
        m = self.login()
        self.assertIn("IDLE", m.capabilities + tuple(
            m.capability()[1][0].decode().split()))
        s, f = self.raw()
        s.sendall(b"a LOGIN %s %s\r\nb IDLE\r\nDONE\r\n" %
                  (USER.encode(), PASSWORD.encode()))
        self.until(f, b"a OK")
        self.assertEqual(f.readline(), b"+ idling\r\n")
        self.assertTrue(f.readline().startswith(b"b OK"))


if __name__ == "__main__":
    unittest.main()
