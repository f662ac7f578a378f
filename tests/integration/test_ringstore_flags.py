"""test_ringstore_flags.py - ringstore's STORE under concurrency, and
keywords, with Python's imaplib and raw sockets.

Concurrent STORE (issue 9, bug 2): a STORE applies its change to the flags
the file has on disk when it is renamed, never to the session's cached
view. The issue's own sequence (session 1 +FLAGS (\\Answered), then
session 2, whose view is stale, -FLAGS (\\Seen) on a (\\Seen) message,
must end as (\\Answered)) is run 200 times; two sessions alternate
+FLAGS/-FLAGS on different flags 200 times each, sequentially (every
answer checked) and from two threads at once (final state checked).

Keywords: PERMANENTFLAGS with \\* (and without it once a folder's 26
letters are taken), FLAGS listing the folder's keywords (also pushed as an
untagged FLAGS to a session that learns of a new keyword), STORE
+/-/replace of keywords with the RFC 3501 edge cases (empty lists, NIL,
atom-specials, bare flags), FETCH FLAGS, SEARCH KEYWORD/UNKEYWORD, APPEND
with keywords, COPY/MOVE into a folder with its own keyword letters,
reconnect and restart, the limits (26 keywords, 128 bytes) answered
NO [LIMIT] with nothing changed, and a Maildir folder written in
Dovecot's keyword format (its file written by the test) read and extended
in that format. Crash safety: kill -9 during a burst of STOREs from two
sessions loses no acknowledged change.
"""

import os
import random
import re
import threading
import imaplib
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"


def message(n, subject="flags"):
    return (b"From: Alice <alice@example.test>\r\n"
            b"To: demo@example.test\r\n"
            b"Subject: %s %d\r\n"
            b"Message-ID: <f%d@example.test>\r\n"
            b"\r\n"
            b"body %d\r\n" % (subject.encode(), n, n, n))


def flags_in(line):
    """The FLAGS (...) of a FETCH response line as a set of str, without
    \\Recent (which session gets it is not what these tests check)."""
    if isinstance(line, tuple):
        line = line[0]
    match = re.search(rb"FLAGS \(([^)]*)\)", line)
    assert match is not None, line
    return frozenset(f.decode() for f in match.group(1).split()) - {
        "\\Recent"}


class FlagsCase(unittest.TestCase):
    """A ringstore (trusted plaintext listener) per test."""

    overrides = {}

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              **self.overrides)
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def login(self):
        return rs.imap_login(self, self.store.port(), USER, PASSWORD)

    def raw(self):
        """A logged-in plain socket and its line reader."""
        s, f = rs.raw_connect(self, self.store.port())
        s.sendall(b"L LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.until(f, b"L")
        return s, f

    def until(self, f, tag):
        return rs.read_tagged(self, f, tag)

    def command(self, s, f, tag, text):
        s.sendall(tag + b" " + text + b"\r\n")
        return self.until(f, tag)

    def append(self, m, folder, msg, flags=""):
        typ, data = m.append(folder, flags, None, msg)
        self.assertEqual(typ, "OK", data)
        return int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))

    def folder_dir(self, folder="INBOX"):
        md = os.path.join(self.dir, "mail", "example.test", "demo",
                          "Maildir")
        return md if folder == "INBOX" else os.path.join(md, "." + folder)

    def store_flags(self, m, seq, op, flags, uid=False):
        """STORE and the flags its FETCH answer reports."""
        m.untagged_responses.pop("FETCH", None)   # earlier unsolicited
        if uid:
            typ, data = m.uid("STORE", seq, op, flags)
        else:
            typ, data = m.store(seq, op, flags)
        self.assertEqual(typ, "OK", data)
        fetches = [d for d in data if d]
        self.assertEqual(len(fetches), 1, data)
        return flags_in(fetches[0])

    def fetch_flags(self, m, seq="1"):
        m.untagged_responses.pop("FETCH", None)
        typ, data = m.fetch(seq, "(FLAGS)")
        self.assertEqual(typ, "OK", data)
        return [flags_in(d) for d in data if d]

    def keyword_file(self, folder="INBOX"):
        with open(os.path.join(self.folder_dir(folder),
                               "dovecot-keywords")) as f:
            return f.read()

    def file_infos(self, folder="INBOX"):
        """The info part (after ':2,') of every message file, sorted."""
        out = []
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(self.folder_dir(folder),
                                                sub)):
                out.append(name.split(":2,", 1)[1] if ":2," in name
                           else "")
        return sorted(out)


# ------------------------------------------------------- concurrent STORE

class TestConcurrentStore(FlagsCase):

    ROUNDS = 200

    def two_sessions(self, initial="(\\Seen)"):
        m = self.login()
        self.append(m, "INBOX", message(1), initial)
        a, b = self.login(), self.login()
        a.select("INBOX")
        b.select("INBOX")
        return a, b

    def test_issue_sequence(self):
        """Issue 9's report, 200 times: the second session's view is
        stale, its -FLAGS must not drop the first one's +FLAGS."""
        a, b = self.two_sessions()
        for r in range(self.ROUNDS):
            self.assertEqual(self.store_flags(a, "1", "FLAGS", "(\\Seen)"),
                             {"\\Seen"})
            self.assertEqual(b.noop()[0], "OK")   # b now knows (\Seen)
            self.assertEqual(
                self.store_flags(a, "1", "+FLAGS", "(\\Answered)"),
                {"\\Seen", "\\Answered"}, "round %d" % r)
            self.assertEqual(
                self.store_flags(b, "1", "-FLAGS", "(\\Seen)"),
                {"\\Answered"}, "round %d" % r)
            self.assertEqual(a.noop()[0], "OK")
            self.assertEqual(self.fetch_flags(a), [{"\\Answered"}],
                             "round %d" % r)

    def test_alternating_sessions(self):
        """Two sessions alternate +FLAGS/-FLAGS on different flags,
        never syncing in between; each answer shows both sessions'
        latest change and the untouched \\Seen."""
        a, b = self.two_sessions()
        state = {"\\Seen"}
        for r in range(self.ROUNDS):
            for m, flag in ((a, "\\Answered"), (b, "\\Flagged")):
                op = "+FLAGS" if r % 2 == 0 else "-FLAGS"
                (state.add if r % 2 == 0 else state.discard)(flag)
                got = self.store_flags(m, "1", op, "(%s)" % flag)
                self.assertEqual(got, state, "round %d %s %s" % (r, op,
                                                                   flag))
        self.assertEqual(self.fetch_flags(self.login_selected()),
                         [frozenset(state)])

    def login_selected(self):
        m = self.login()
        m.select("INBOX")
        return m

    def hammer(self, flag, rounds, seen, errors):
        """One session toggling its own flag; every answer must show
        its own flag as it just set it."""
        try:
            m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
            m.login(USER, PASSWORD)
            m.select("INBOX")
            for r in range(rounds):
                add = r % 2 == 1   # the last round adds
                typ, data = m.store("1", "+FLAGS" if add else "-FLAGS",
                                    "(%s)" % flag)
                if typ != "OK":
                    errors.append((flag, r, typ, data))
                    continue
                got = flags_in([d for d in data if d][0])
                if (flag in got) != add or "\\Seen" not in got:
                    errors.append((flag, r, sorted(got)))
                seen.append(got)
            m.logout()
        except Exception as e:   # reported by the test thread
            errors.append((flag, repr(e)))

    def two_threads(self, flags):
        """Two sessions at the same time, 200 STOREs each on their own
        flag, ending with +FLAGS: the final message has both, and
        \\Seen, which nobody touched."""
        self.two_sessions()
        seen, errors = [], []
        threads = [threading.Thread(target=self.hammer,
                                    args=(flag, self.ROUNDS, seen, errors))
                   for flag in flags]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])
        self.assertEqual(len(seen), 2 * self.ROUNDS)
        self.assertEqual(self.fetch_flags(self.login_selected()),
                         [{"\\Seen"} | set(flags)])

    def test_two_threads_system_flags(self):
        self.two_threads(("\\Answered", "\\Flagged"))

    def test_two_threads_keyword_and_flag(self):
        self.two_threads(("\\Draft", "$Label1"))


# --------------------------------------------------------------- keywords

class TestKeywords(FlagsCase):

    overrides = {"limits": {"bad_commands": 100}}

    def setUp(self):
        super().setUp()
        self.m = self.login()
        for i in range(1, 4):
            self.append(self.m, "INBOX", message(i))
        self.m.select("INBOX")

    def permanentflags(self, m):
        return m.untagged_responses.get("PERMANENTFLAGS", [b""])[-1]

    def test_permanentflags_and_flags(self):
        m = self.m
        self.assertIn(b"\\*", self.permanentflags(m))
        self.assertNotIn(b"$Forwarded", m.untagged_responses["FLAGS"][-1])
        typ, data = m.store("1", "+FLAGS", "($Forwarded)")
        self.assertEqual(typ, "OK")
        # the new keyword was announced with the STORE
        self.assertIn(b"$Forwarded", m.untagged_responses["FLAGS"][-1])
        self.assertEqual(flags_in(data[0]), {"$Forwarded"})
        m.select("INBOX")
        self.assertEqual(m.untagged_responses["FLAGS"][-1],
                         b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                         b"$Forwarded)")
        self.assertEqual(self.permanentflags(m),
                         b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                         b"$Forwarded \\*)")
        self.assertEqual(self.keyword_file(), "0 $Forwarded\n")
        self.assertEqual(self.file_infos(), ["", "", "a"])

    def test_store_set_clear_replace(self):
        m = self.m
        self.assertEqual(self.store_flags(m, "1", "+FLAGS",
                                          "(\\Seen $Junk NonJunk)"),
                         {"\\Seen", "$Junk", "NonJunk"})
        # keywords compare case-insensitively; the first spelling stays
        self.assertEqual(self.store_flags(m, "1", "-FLAGS", "($JUNK)"),
                         {"\\Seen", "NonJunk"})
        self.assertEqual(self.store_flags(m, "1", "+FLAGS", "($junk)"),
                         {"\\Seen", "NonJunk", "$Junk"})
        self.assertEqual(self.store_flags(m, "1", "FLAGS",
                                          "(\\Flagged $label1)"),
                         {"\\Flagged", "$label1"})
        self.assertEqual(self.store_flags(m, "1", "FLAGS", "()"),
                         frozenset())
        # bare flags, without a list (RFC 3501 allows both)
        self.assertEqual(self.store_flags(m, "1", "+FLAGS", "$a \\Seen"),
                         {"$a", "\\Seen"})
        # .SILENT: no FETCH
        typ, data = m.store("2", "+FLAGS.SILENT", "($b)")
        self.assertEqual((typ, data), ("OK", [None]))
        self.assertEqual(self.fetch_flags(m, "1:3"),
                         [{"$a", "\\Seen"}, {"$b"}, frozenset()])
        # UID STORE answers with the UID
        typ, data = m.uid("STORE", "3", "+FLAGS", "($c)")
        self.assertRegex(data[0], rb"^3 \(FLAGS \((\\Recent )?\$c\) UID 3\)$")

    def test_edge_cases_raw(self):
        """RFC 3501 flag-list edge cases, each answer exactly."""
        s, f = self.raw()
        self.command(s, f, b"S", b"SELECT INBOX")
        self.command(s, f, b"P", b"STORE 1 FLAGS (\\Seen $k)")
        # empty lists: legal; +/- change nothing, FLAGS () clears all
        for tag, op in ((b"E1", b"+FLAGS"), (b"E2", b"-FLAGS")):
            lines = self.command(s, f, tag, b"STORE 1 " + op + b" ()")
            self.assertEqual(lines, [b"* 1 FETCH (FLAGS (\\Seen $k))\r\n",
                                     tag + b" OK STORE completed\r\n"])
        lines = self.command(s, f, b"E3", b"STORE 1 +FLAGS.SILENT ()")
        self.assertEqual(lines, [b"E3 OK STORE completed\r\n"])
        # syntax errors: BAD, nothing changed
        bad = [b"STORE 1 +FLAGS",
               b"STORE 1 +FLAGS (\\Seen) $x", b"STORE 1 +FLAGS (\"q\")",
               b"STORE 1 +FLAGS (a]b)", b"STORE 1 +FLAGS (a%b)",
               b"STORE 1 +FLAGS (a*b)", b"STORE 1 +FLAGS (\\Bogus)",
               b"STORE 1 +FLAGS (\\*)", b"STORE 1 +FLAGS ((a))",
               b"STORE 1 +FLAGS ({1}\r\na)",
               b"STORE 1 +FLAGS (a\x80)", b"STORE 1 FLAGS a)"]
        for i, cmd in enumerate(bad):
            tag = b"B%d" % i
            if b"{1}" in cmd:
                s.sendall(tag + b" " + cmd.split(b"\r\n")[0] + b"\r\n")
                line = f.readline()
                if line.startswith(b"+"):
                    s.sendall(b"a)\r\n")
                    lines = self.until(f, tag)
                else:
                    lines = [line]
            else:
                lines = self.command(s, f, tag, cmd)
            self.assertTrue(lines[-1].startswith(tag + b" BAD"),
                            (cmd, lines))
            self.assertEqual([l for l in lines if b"FETCH" in l], [], cmd)
        lines = self.command(s, f, b"F", b"FETCH 1 FLAGS")
        self.assertEqual(lines[0], b"* 1 FETCH (FLAGS (\\Seen $k))\r\n")
        lines = self.command(s, f, b"E4", b"STORE 1 FLAGS ()")
        self.assertEqual(lines, [b"* 1 FETCH (FLAGS ())\r\n",
                                 b"E4 OK STORE completed\r\n"])
        # NIL is an atom, so a keyword (RFC 3501 flag-keyword = atom)
        lines = self.command(s, f, b"N1", b"STORE 1 +FLAGS NIL")
        self.assertEqual(lines[-2:], [b"* 1 FETCH (FLAGS (NIL))\r\n",
                                      b"N1 OK STORE completed\r\n"])
        # a new keyword: FLAGS and PERMANENTFLAGS announced first
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                      b"\\Draft $k NIL)\r\n", lines)
        lines = self.command(s, f, b"N2", b"STORE 1 -FLAGS (NIL)")
        self.assertEqual(lines, [b"* 1 FETCH (FLAGS ())\r\n",
                                 b"N2 OK STORE completed\r\n"])
        # \Recent cannot be stored: accepted, ignored
        lines = self.command(s, f, b"R", b"STORE 1 +FLAGS (\\Recent)")
        self.assertEqual(lines, [b"* 1 FETCH (FLAGS ())\r\n",
                                 b"R OK STORE completed\r\n"])

    def test_limits(self):
        m = self.m
        names = ["$k%02d" % i for i in range(26)]
        # 27 at once: refused whole, no keyword file written
        typ, data = m.store("1", "+FLAGS", "(\\Seen %s $k26)"
                            % " ".join(names))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[LIMIT]", data[0])
        self.assertFalse(os.path.exists(os.path.join(self.folder_dir(),
                                                     "dovecot-keywords")))
        self.assertEqual(self.fetch_flags(m), [frozenset()])
        # 26 fit
        self.assertEqual(self.store_flags(m, "1", "+FLAGS",
                                          "(%s)" % " ".join(names)),
                         frozenset(names))
        m.select("INBOX")
        self.assertNotIn(b"\\*", self.permanentflags(m))
        # a 27th is NO [LIMIT], and the STORE changes nothing
        typ, data = m.store("2", "+FLAGS", "(\\Seen $one-more)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[LIMIT]", data[0])
        self.assertEqual(self.fetch_flags(m, "2"), [frozenset()])
        # known ones still work
        self.assertEqual(self.store_flags(m, "2", "+FLAGS", "($K25)"),
                         {"$k25"})
        # length: 128 bytes is fine (in another folder), 129 is not
        m.create("Long")
        self.append(m, "Long", message(9))
        m.select("Long")
        self.assertEqual(self.store_flags(m, "1", "+FLAGS", "(%s)"
                                          % ("x" * 128)), {"x" * 128})
        typ, data = m.store("1", "+FLAGS", "(%s)" % ("y" * 129))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[LIMIT]", data[0])

    def test_search_keyword(self):
        m = self.m
        m.store("1", "+FLAGS", "($a)")
        m.store("2", "+FLAGS", "($a $b)")
        for query, want in (("KEYWORD $a", b"1 2"), ("KEYWORD $A", b"1 2"),
                            ("UNKEYWORD $a", b"3"), ("KEYWORD $b", b"2"),
                            ("KEYWORD $none", b""),
                            ("UNKEYWORD $none", b"1 2 3"),
                            ("OR KEYWORD $b UNKEYWORD $a", b"2 3"),
                            ("NOT KEYWORD $a KEYWORD $b", b"")):
            typ, data = m.search(None, query)
            self.assertEqual((typ, data), ("OK", [want]), query)
        typ, data = m.uid("SEARCH", "KEYWORD", "$b")
        self.assertEqual(data, [b"2"])
        for query in ("KEYWORD", "KEYWORD (a)", "KEYWORD a]b",
                      "KEYWORD \\Seen"):
            with self.assertRaises(imaplib.IMAP4.error, msg=query):
                m.search(None, query)

    def test_append_keywords(self):
        m = self.m
        uid = self.append(m, "INBOX", message(7), "(\\Seen $Fwd NonJunk)")
        m.noop()
        typ, data = m.uid("FETCH", str(uid), "(FLAGS)")
        self.assertEqual(flags_in(data[0]) - {"\\Recent"},
                         {"\\Seen", "$Fwd", "NonJunk"})
        self.assertEqual(self.keyword_file(), "0 $Fwd\n1 NonJunk\n")
        # a keyword too long to keep is dropped, the message is kept
        self.append(m, "Trash", message(8), "(\\Flagged %s)" % ("z" * 200))
        m.select("Trash")
        self.assertEqual(self.fetch_flags(m), [{"\\Flagged"}])
        # NIL is a keyword like any other
        uid = self.append(m, "INBOX", message(9), "(NIL)")
        m.select("INBOX")
        typ, data = m.uid("FETCH", str(uid), "(FLAGS)")
        self.assertEqual(flags_in(data[0]) - {"\\Recent"}, {"NIL"})

    def test_copy_move_into_other_letters(self):
        m = self.m
        m.create("Other")
        self.append(m, "Other", message(5), "($dst)")
        self.store_flags(m, "1", "+FLAGS", "(\\Seen $one $two)")
        self.store_flags(m, "2", "+FLAGS", "($two)")
        self.assertEqual(self.keyword_file(), "0 $one\n1 $two\n")
        typ, data = m.copy("1", "Other")
        self.assertEqual(typ, "OK", data)
        typ, data = m._simple_command("MOVE", "2", "Other")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.fetch_flags(m, "1:*"),
                         [{"\\Seen", "$one", "$two"}, frozenset()])
        m.select("Other")
        self.assertEqual(self.fetch_flags(m, "1:*"),
                         [{"$dst"}, {"\\Seen", "$one", "$two"}, {"$two"}])
        # the destination's own letters: $dst a, $one b, $two c
        self.assertEqual(self.keyword_file("Other"),
                         "0 $dst\n1 $one\n2 $two\n")
        self.assertEqual(self.file_infos("Other"), ["Sbc", "a", "c"])
        typ, data = m.search(None, "KEYWORD $two")
        self.assertEqual(data, [b"2 3"])

    def test_rename_inbox_keeps_keywords(self):
        self.store_flags(self.m, "1", "+FLAGS", "($a $b)")
        self.store_flags(self.m, "2", "+FLAGS", "($b)")
        self.m.create("Pre")
        self.append(self.m, "Pre", message(9), "($z)")
        self.m.close()
        self.assertEqual(self.m.rename("Pre", "Pre2")[0], "OK")
        self.assertEqual(self.m.rename("INBOX", "Old")[0], "OK")
        self.m.select("Old")
        self.assertEqual(self.fetch_flags(self.m, "1:*"),
                         [{"$a", "$b"}, {"$b"}, frozenset()])
        self.m.select("Pre2")
        self.assertEqual(self.fetch_flags(self.m), [{"$z"}])

    def test_reconnect_and_restart(self):
        m = self.m
        self.store_flags(m, "2", "+FLAGS", "($Keep \\Answered)")
        m.logout()
        m = self.login()
        m.select("INBOX")
        self.assertEqual(self.fetch_flags(m, "2"), [{"$Keep",
                                                     "\\Answered"}])
        m.logout()
        self.store.stop_checked()
        self.store.start(self)
        m = self.login()
        m.select("INBOX")
        self.assertIn(b"$Keep", m.untagged_responses["FLAGS"][-1])
        self.assertEqual(self.fetch_flags(m, "2"), [{"$Keep",
                                                     "\\Answered"}])

    def test_other_session_learns_new_keyword(self):
        """A keyword created by another session reaches this one as an
        untagged FLAGS before the FETCH that shows it."""
        s, f = self.raw()
        self.command(s, f, b"S", b"SELECT INBOX")
        self.store_flags(self.m, "3", "+FLAGS", "($New)")
        lines = self.command(s, f, b"N", b"NOOP")
        self.assertEqual(lines[0], b"* FLAGS (\\Answered \\Flagged "
                         b"\\Deleted \\Seen \\Draft $New)\r\n")
        self.assertTrue(lines[1].startswith(b"* OK [PERMANENTFLAGS ("),
                        lines)
        self.assertEqual(lines[2], b"* 3 FETCH (FLAGS ($New) UID 3)\r\n")
        # and only once
        self.store_flags(self.m, "2", "+FLAGS", "($New)")
        lines = self.command(s, f, b"N2", b"NOOP")
        self.assertEqual(lines[0], b"* 2 FETCH (FLAGS ($New) UID 2)\r\n")

    def test_examine_is_read_only(self):
        self.store_flags(self.m, "1", "+FLAGS", "($x)")
        m = self.login()
        m.select("INBOX", readonly=True)
        self.assertEqual(self.permanentflags(m), b"()")
        self.assertIn(b"$x", m.untagged_responses["FLAGS"][-1])
        typ, data = m.store("1", "+FLAGS", "($y)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"READ-ONLY", data[0])

    def test_dovecot_maildir(self):
        """A folder written as Dovecot writes it (file by the test) is
        read, searched and extended in the same format."""
        d = self.folder_dir("Dove")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, sub))
        open(os.path.join(d, "maildirfolder"), "w").close()
        with open(os.path.join(d, "dovecot-keywords"), "w") as f:
            # letters: a $Junk, b NonJunk, c a name that is no atom
            # (kept, not shown), d $label1; lines Dovecot would skip
            f.write("0 $Junk\n1 NonJunk\n2 bad]name\n3 $label1\n"
                    "garbage\n27 toolarge\n-1 neg\n")
        files = ["1700000001.M1P1.dove:2,Sa", "1700000002.M2P1.dove:2,bd",
                 "1700000003.M3P1.dove:2,c", "1700000004.M4P1.dove:2,Fe"]
        for i, name in enumerate(files):
            with open(os.path.join(d, "cur", name), "wb") as f:
                f.write(message(20 + i))
        m = self.m
        typ, data = m.select("Dove")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.untagged_responses["FLAGS"][-1],
                         b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                         b"$Junk NonJunk $label1)")
        self.assertEqual(self.fetch_flags(m, "1:*"),
                         [{"\\Seen", "$Junk"}, {"NonJunk", "$label1"},
                          frozenset(), {"\\Flagged"}])
        typ, data = m.search(None, "KEYWORD $junk")
        self.assertEqual(data, [b"1"])
        # a new keyword takes the first letter with no line that no file
        # uses (c has a line, e is on a file): f
        self.assertEqual(self.store_flags(m, "3", "+FLAGS", "($new)"),
                         {"$new"})
        self.assertEqual(self.keyword_file("Dove"),
                         "0 $Junk\n1 NonJunk\n2 bad]name\n3 $label1\n"
                         "5 $new\n")
        # letters without a name survive every kind of STORE
        self.assertEqual(self.store_flags(m, "4", "FLAGS", "(\\Seen)"),
                         {"\\Seen"})
        self.assertEqual(self.store_flags(m, "1", "-FLAGS", "($Junk)"),
                         {"\\Seen"})
        self.assertEqual(self.file_infos("Dove"), ["S", "Se", "bd", "cf"])
        self.assertEqual(os.listdir(d).count("dovecot-keywords.tmp"), 0)


# ------------------------------------------------------------------ crash

class TestCrashDuringStores(FlagsCase):
    """kill -9 during a burst of STOREs from two sessions: every change
    that was answered OK is there after the restart."""

    THREADS = 2
    PER_THREAD = 6
    FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "$kw1", "$kw2", "$kw3")

    def storer(self, k, acked, inflight, count, stop):
        """UID STOREs on this thread's own messages until the server
        dies; acked[uid] is the last FLAGS an OK reported."""
        rnd = random.Random(k)
        uids = [k * self.PER_THREAD + i + 1 for i in range(self.PER_THREAD)]
        try:
            m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
            m.login(USER, PASSWORD)
            m.select("INBOX")
            while not stop.is_set():
                uid = rnd.choice(uids)
                op = rnd.choice(("+FLAGS", "-FLAGS", "FLAGS"))
                flags = set(rnd.sample(self.FLAGS, rnd.randint(1, 3)))
                inflight[uid] = (op, flags)
                typ, data = m.uid("STORE", str(uid), op,
                                  "(%s)" % " ".join(sorted(flags)))
                if typ != "OK":
                    acked[uid] = ("NO", data)
                    continue
                acked[uid] = flags_in([d for d in data if d][0])
                del inflight[uid]
                count.append(1)
        except (OSError, imaplib.IMAP4.abort, EOFError):
            pass   # the server was killed

    @staticmethod
    def apply(state, op, flags):
        if op == "+FLAGS":
            return frozenset(state | flags)
        if op == "-FLAGS":
            return frozenset(state - flags)
        return frozenset(flags)

    def test_kill_9_mid_burst(self):
        m = self.login()
        n = self.THREADS * self.PER_THREAD
        for i in range(n):
            self.append(m, "INBOX", message(i))
        rs.logout_quietly(m)
        acked = {uid: frozenset() for uid in range(1, n + 1)}
        inflight, count = {}, []
        threads = rs.kill_during(
            self.store,
            [lambda stop, k=k: self.storer(k, acked, inflight, count, stop)
             for k in range(self.THREADS)],
            lambda: len(count) >= 300, 120, "300 STOREs acknowledged")
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual([a for a in acked.values() if a and
                          isinstance(a, tuple)], [])
        self.store.stop()
        self.store.start(self)
        self.store.killed = False
        m = self.login()
        m.select("INBOX")
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS)")
        final = {}
        for line in data:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            final[uid] = flags_in(line)
        self.assertEqual(sorted(final), list(range(1, n + 1)))
        for uid in final:
            allowed = {acked[uid]}
            if uid in inflight:   # sent, no answer: either outcome
                allowed.add(self.apply(acked[uid], *inflight[uid]))
            self.assertIn(final[uid], allowed, "UID %d" % uid)
        print("\n%d STOREs acknowledged before kill -9" % len(count))


if __name__ == "__main__":
    unittest.main()
