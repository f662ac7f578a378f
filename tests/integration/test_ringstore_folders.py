"""test_ringstore_folders.py - folder names and per-user folder limits.

Issue 9, bug 4 and items 5 and 8, through imaplib and raw sockets:

- CREATE with a trailing hierarchy separator ("foo/") ignores it (RFC
  3501 6.3.3) and makes an ordinary folder that can have children;
  LSUB with '%' lists an unsubscribed parent of a subscribed folder as
  \\Noselect (6.3.9), and never a parent that is subscribed itself;
- "." and ".." (alone or as a component, "a/../b") are no folder names:
  NO, and nothing appears on disk;
- a name that is not valid modified UTF-7, or too long, is answered NO
  (not BAD, which counts toward the bad-command disconnect) by every
  command that takes a mailbox name, and SELECT of one still closes the
  selected folder;
- limits.folders_max, folder_depth_max and folder_name_max: CREATE and
  RENAME beyond them answer NO [LIMIT] and change nothing; sessions
  creating at once overshoot by at most one folder each; SUBSCRIBE keeps to
  INBOX + folders_max names of at most folder_name_max bytes;
- LIST patterns full of wildcards cost linear time; LIST ref "" gives the
  delimiter.
"""

import base64
import imaplib
import os
import threading
import unittest

import rs_harness as rs

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD


def utf7(name):
    """Modified UTF-7 (RFC 3501 5.1.3) of a name without '&' or ASCII
    runs inside non-ASCII ones."""
    out, run = [], ""
    for ch in name + "\0":
        if ch != "\0" and not (0x20 <= ord(ch) < 0x7f):
            run += ch
            continue
        if run:
            b64 = base64.b64encode(run.encode("utf-16-be")).decode()
            out.append("&" + b64.rstrip("=").replace("/", ",") + "-")
            run = ""
        if ch != "\0":
            out.append(ch)
    return "".join(out)


class FolderCase(rs.StoreTestCase):

    def entries(self):
        """The folder directories in the Maildir."""
        return sorted(e for e in os.listdir(self.maildir)
                      if e.startswith(".") and
                      os.path.isdir(os.path.join(self.maildir, e)))

    def folders(self, m):
        typ, data = m.list()
        self.assertEqual(typ, "OK", data)
        return sorted(line.rsplit(b' "/" ', 1)[1].strip(b'"').decode()
                      for line in data if line)


class TestCreateAndLsub(FolderCase):

    def test_create_with_trailing_separator(self):
        m = self.login()
        self.ok(m.create("foo/"))
        self.assertIn(".foo", self.entries())
        data = self.ok(m.list('""', "foo"))
        self.assertEqual(data, [b'(\\HasNoChildren) "/" foo'])
        self.ok(m.select("foo"))
        self.no(m.create("foo/"), b"ALREADYEXISTS")
        self.no(m.create("foo"), b"ALREADYEXISTS")
        self.no(m.create("INBOX/"), b"ALREADYEXISTS")
        # the declared parent takes children
        self.ok(m.create("foo/bar/"))
        self.ok(m.create("foo/bar/baz"))
        self.assertEqual(self.ok(m.list('""', "foo/%")),
                         [b'(\\HasChildren) "/" foo/bar'])
        self.assertEqual(self.ok(m.list('""', "foo")),
                         [b'(\\HasChildren) "/" foo'])
        # only one separator is a declaration; "/" alone names nothing
        for bad in ("foo//", "/", "//"):
            self.no(m.create(bad))
        self.assertEqual(
            [e for e in self.entries() if e.startswith(".foo")],
            [".foo", ".foo.bar", ".foo.bar.baz"])

    def test_lsub_lists_unsubscribed_parents_noselect(self):
        m = self.login()
        self.ok(m.create("foo/"))
        self.ok(m.create("foo/bar/baz"))
        self.ok(m.create("top/mid/leaf"))
        self.ok(m.subscribe("foo/bar/baz"))
        self.ok(m.subscribe("top/mid/leaf"))
        self.ok(m.subscribe("gone/child"))  # need not exist
        self.assertEqual(self.ok(m.lsub('""', "foo/%")),
                         [b'(\\Noselect) "/" foo/bar'])
        self.assertEqual(sorted(self.ok(m.lsub('""', "%"))), sorted([
            b'() "/" INBOX', b'() "/" Drafts', b'() "/" Sent',
            b'() "/" Trash', b'() "/" Junk',
            b'(\\Noselect) "/" foo', b'(\\Noselect) "/" gone',
            b'(\\Noselect) "/" top']))
        self.assertEqual(self.ok(m.lsub('""', "foo/bar/%")),
                         [b'() "/" foo/bar/baz'])
        self.assertEqual(self.ok(m.lsub("foo/", "%")),
                         [b'(\\Noselect) "/" foo/bar'])
        # '*' matches the subscribed names themselves: no parents
        self.assertEqual(self.ok(m.lsub('""', "foo*")),
                         [b'() "/" foo/bar/baz'])
        # once subscribed, the parent is listed as itself, once
        self.ok(m.subscribe("foo/bar"))
        self.assertEqual(self.ok(m.lsub('""', "foo/%")),
                         [b'() "/" foo/bar'])
        self.ok(m.unsubscribe("foo/bar/baz"))
        self.assertEqual(self.ok(m.lsub('""', "foo/%")),
                         [b'() "/" foo/bar'])
        self.ok(m.unsubscribe("foo/bar"))
        self.assertEqual(self.ok(m.lsub('""', "foo/%")), [None])


class TestNames(FolderCase):

    def test_dot_components_refused(self):
        m = self.login()
        before = self.entries()
        for name in (".", "..", "a/..", "a/../b", "./a", "a/./b",
                     "INBOX/..", "x/../../y"):
            self.no(m.create(name), b"CANNOT")
            self.no(m.append(name, None, None, b"Subject: x\r\n\r\nx\r\n"))
            self.no(m.rename("Trash", name), b"CANNOT")
        self.assertEqual(self.entries(), before)
        # dots inside a name are fine
        self.ok(m.create("v1.2/..x"))
        self.assertIn("v1.2/..x", self.folders(m))

    def test_list_pattern_many_wildcards(self):
        """LIST patterns full of wildcards cost time linear in the names
        (the backtracking matcher took 7 s for eight '*' against three
        40-byte names, and doubled with each one more)."""
        m = self.login()
        long_names = ["a" * 200 + "/" + "b" * 40 + str(i) for i in range(5)]
        for name in long_names:
            self.ok(m.create(name))
        for pattern in ('"' + "*" * 60 + 'x"', '"' + "%*a" * 300 + 'x"',
                        '"' + "*b" * 120 + '"'):
            typ, data = m.list('""', pattern)
            self.assertEqual((typ, data), ("OK", [None]), pattern[:20])
        # the same patterns still list what they match
        typ, data = m.list('""', '"' + "*a" * 100 + "*" + '"')
        self.assertEqual(typ, "OK")
        self.assertEqual(len([d for d in data if d]), 6)  # + parent "aaa..."
        typ, data = m.list('""', '"' + "%a" * 100 + '/%"')
        self.assertEqual(typ, "OK")
        self.assertEqual(len([d for d in data if d]), 5)
        typ, data = m.lsub('""', '"' + "*" * 60 + 'x"')
        self.assertEqual((typ, data), ("OK", [None]))

    def test_list_empty_name_gives_delimiter(self):
        """LIST ref "" gives the delimiter and the root name, whatever
        the reference (RFC 3501 6.3.8); one namespace, so the root is
        ""."""
        m = self.login()
        self.ok(m.create("a/b"))
        for ref in ('""', '"a/b"', '"a/"', '"nonexistent"'):
            typ, data = m.list(ref, '""')
            self.assertEqual((typ, data), ("OK", [b'(\\Noselect) "/" ""']),
                             ref)
        # a non-empty name is still joined to the reference
        typ, data = m.list('"a/"', '"%"')
        self.assertEqual(typ, "OK")
        self.assertEqual([d for d in data if d],
                         [b'(\\HasNoChildren) "/" a/b'])

    def test_invalid_names_answered_no(self):
        s, f = self.raw(login=True)
        bad = [b'"a&Jjo!"', b'"&AGE"', b'"x&-&ZeVnLIqe"',
               b'"' + b"n" * 1100 + b'"']
        # limits.bad_commands is 5: twenty NOs must not end the session
        for k, name in enumerate(bad * 5):
            t = b"t%d" % k
            cmds = [b"CREATE %s", b"DELETE %s", b"SUBSCRIBE %s",
                    b"STATUS %s (MESSAGES)", b"EXAMINE %s",
                    b"RENAME INBOX/x %s", b'LIST "" %s']
            cmd = cmds[k % len(cmds)]
            s.sendall(t + b" " + cmd % name + b"\r\n")
            untagged = []
            line = self.tagged(f, t, untagged)
            if cmd.startswith(b"LIST"):
                # a pattern no name can match: nothing listed, OK
                # (RFC 3501 6.3.8; what imaptest expects too)
                self.assertTrue(line.startswith(t + b" OK"), line)
                self.assertEqual(untagged, [])
                continue
            self.assertTrue(line.startswith(t + b" NO ["), line)
            code = b"LIMIT" if len(name) > 1000 else b"CANNOT"
            self.assertIn(b"[" + code + b"]", line)
        # APPEND, small (inline) and streamed, synchronizing or not; a
        # streamed synchronizing literal is refused before the message
        s.sendall(b'a1 APPEND "a&Jjo!" {5}\r\n')
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"hello\r\n")
        self.assertTrue(self.tagged(f, b"a1").startswith(b"a1 NO [CANNOT]"))
        # then COPY and SELECT while selected; a refused SELECT still
        # closes the selected folder (RFC 3501 6.3.1), so CHECK is BAD
        for tag, line, want in (
                (b"a3", b'APPEND "a&Jjo!" {100000}', b"NO [CANNOT]"),
                (b"a4", b'APPEND "a&Jjo!" {100000+}\r\n' +
                 b"x" * 100000, b"NO [CANNOT]"),
                (b"a2", b'APPEND "a&Jjo!" {5+}\r\nhello', b"NO [CANNOT]"),
                (b"s1", b"SELECT INBOX", b"OK"),
                (b"c1", b'COPY 1:* "a&Jjo!"', b"NO [CANNOT]"),
                (b"c2", b'UID MOVE 1:* "&AGE"', b"NO [CANNOT]"),
                (b"s2", b'SELECT "&AGE"', b"NO [CANNOT]"),
                (b"s3", b"NOOP", b"OK"),
                (b"s4", b"CHECK", b"BAD"),
                (b"z", b"LOGOUT", b"OK")):
            s.sendall(tag + b" " + line + b"\r\n")
            reply = self.tagged(f, tag)
            self.assertTrue(reply.startswith(tag + b" " + want), reply)
        # syntax errors are still BAD
        s, f = self.raw(login=True)
        s.sendall(b"b1 CREATE\r\n")
        self.assertTrue(self.tagged(f, b"b1").startswith(b"b1 BAD"))
        s.sendall(b"b2 CREATE (a)\r\n")
        self.assertTrue(self.tagged(f, b"b2").startswith(b"b2 BAD"))

    def test_long_name_is_a_limit_by_default(self):
        m = self.login()
        self.ok(m.create("x" * 254))
        self.no(m.create("y" * 256), b"LIMIT")
        # escapes count on disk: 100 dots take 300 bytes of the entry
        self.no(m.create("." * 100), b"LIMIT")


class TestCountLimit(FolderCase):
    limits = {"folders_max": 20}

    def count(self):
        return len([e for e in self.entries()
                    if not e.startswith(".ringstore")])

    def test_create_up_to_the_limit(self):
        m = self.login()
        for k in range(16):
            self.ok(m.create("f%02d" % k))
        self.assertEqual(self.count(), 20)
        self.no(m.create("one-more"), b"LIMIT")
        self.no(m.create("f00/child"), b"LIMIT")
        self.assertEqual(self.count(), 20)
        # renames move, they do not add
        self.ok(m.rename("f00", "g00"))
        # ... unless they create parents, or INBOX's messages a folder
        self.no(m.rename("f01", "new/f01"), b"LIMIT")
        self.no(m.rename("INBOX", "old-inbox"), b"LIMIT")
        self.ok(m.delete("f02"))
        self.ok(m.create("f02/"))
        self.no(m.create("f99"), b"LIMIT")
        self.ok(m.delete("f03"))
        self.ok(m.delete("f04"))
        # a create with a missing parent needs room for both
        self.ok(m.create("p/q"))
        self.assertEqual(self.count(), 20)
        self.assertIn("p/q", self.folders(m))

    def test_subscriptions_bounded(self):
        """Names need not exist to be subscribed, so the list has the
        folder cap too (INBOX + folders_max names): a user cannot grow
        the file, rewritten whole on every change, without end."""
        m = self.login()  # subscribes INBOX and the four defaults
        for k in range(16):
            self.ok(m.subscribe("nosuch%02d" % k))
        self.no(m.subscribe("one-more"), b"LIMIT")
        self.ok(m.subscribe("nosuch00"))  # already there: fine
        self.ok(m.unsubscribe("nosuch00"))
        self.ok(m.subscribe("one-more"))
        typ, data = m.lsub()
        self.assertEqual(typ, "OK")
        self.assertEqual(len([d for d in data if d]), 21)

    def test_concurrent_creators_bounded(self):
        sessions = 4
        errors = []

        def creator(i):
            try:
                m = imaplib.IMAP4("127.0.0.1", self.store.port(),
                                  timeout=30)
                m.login(USER, PASSWORD)
                for k in range(30):
                    typ, data = m.create("s%d-%02d" % (i, k))
                    if typ != "OK" and b"[LIMIT]" not in data[0]:
                        errors.append(data)
                m.logout()
            except Exception as e:  # reported below
                errors.append(repr(e))

        self.login()  # first login makes the four defaults
        for rnd in range(3):
            threads = [threading.Thread(target=creator, args=(i,))
                       for i in range(sessions)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [])
            # at most one folder per concurrent session beyond the limit
            self.assertLessEqual(self.count(), 20 + sessions - 1)
            self.assertGreaterEqual(self.count(), 20)
            m = self.login()
            for name in self.folders(m):
                if name.startswith("s"):
                    self.ok(m.delete(name))
            self.assertEqual(self.count(), 4)


class TestShapeLimits(FolderCase):
    limits = {"folder_depth_max": 4, "folder_name_max": 40}

    def test_depth_and_length(self):
        m = self.login()
        self.ok(m.create("a/b/c/d"))
        self.no(m.create("a/b/c/d/e"), b"LIMIT")
        self.no(m.create("1/2/3/4/5/6/7"), b"LIMIT")
        self.ok(m.create("n" * 40))
        self.no(m.create("n" * 41), b"LIMIT")
        # bytes of UTF-8, not characters: 20 x U+00E4 is 40 bytes
        self.ok(m.create(utf7("\u00e4" * 20)))
        self.no(m.create(utf7("\u00e4" * 21)), b"LIMIT")
        # RENAME: the children's new names count too; nothing moves
        before = self.entries()
        self.no(m.rename("a", "x/y"), b"LIMIT")
        self.no(m.rename("a/b", "a/b/c/d/z"), b"LIMIT")
        self.no(m.rename("a", "m" * 36 + "/a"), b"LIMIT")
        self.assertEqual(self.entries(), before)
        self.ok(m.rename("a/b", "x"))
        self.assertIn("x/c/d", self.folders(m))
        # SUBSCRIBE takes no longer name than CREATE
        self.ok(m.subscribe("s" * 40))
        self.no(m.subscribe("s" * 41), b"LIMIT")


if __name__ == "__main__":
    unittest.main()
