"""test_ringstore_sessions.py - two real imaplib sessions on one folder.

What one session does must not break, and must be announced correctly
to, the session beside it (issue 9, bugs 1 and 3):

- APPENDs dated 2020 (small ones and streamed ones over 64 KiB) from one
  session all succeed while a second session SELECTs the same folder in
  a loop: the second session's tmp/ cleanup must judge by a time the
  deliverer cannot set and never touch a file in flight;
- APPEND, COPY, UID COPY and UID MOVE into the selected folder announce
  "* n EXISTS" (and "* r RECENT") before the tagged OK, so FETCH n works
  right after;
- \\Recent goes to exactly one session (the first to see a message),
  whether the message came by APPEND without flags, APPEND with flags,
  COPY or a delivery agent dropping a file into new/; EXAMINE and STATUS
  report what no session has claimed yet, without claiming it; NOOP
  after new mail reports RECENT with EXISTS.

Every concurrency case runs many rounds, not once.
"""

import os
import re
import threading
import time
import unittest

import rs_harness as rs

OLD_DATE = '"15-Mar-2020 10:00:00 +0000"'


def small_message(k):
    return (b"From: Old <old@example.test>\r\n"
            b"Subject: old %d\r\n"
            b"Date: Sun, 15 Mar 2020 10:00:00 +0000\r\n\r\n"
            b"body %d\r\n" % (k, k))


def large_message(k):
    """Over 64 KiB: the parser streams it to the tmp file in chunks."""
    return small_message(k) + (b"%064d\r\n" % k) * 1200


class SessionCase(rs.StoreTestCase):

    def setUp(self):
        super().setUp()
        self.inbox = self.maildir

    def untagged(self, m, name):
        """imaplib's collected untagged responses of one kind, taken."""
        return m._untagged_response("OK", [None], name)[1]

    def select(self, m, box="INBOX"):
        """SELECT and take its EXISTS and RECENT: (exists, recent)."""
        self.ok(m.select(box))
        return (int(self.untagged(m, "EXISTS")[-1]),
                int(self.untagged(m, "RECENT")[-1]))


class TestAppendWhileSelecting(SessionCase):
    """Bug 1: old-dated APPENDs against a session that SELECTs in a loop."""

    def run_race(self, make, rounds):
        stop = threading.Event()
        errors = []

        def selector():
            try:
                m = self.login()
                while not stop.is_set():
                    self.ok(m.select("INBOX"))
            except Exception as e:  # reported below
                errors.append(repr(e))

        t = threading.Thread(target=selector)
        t.start()
        failed = []
        try:
            m = self.login()
            for k in range(rounds):
                typ, data = m.append("INBOX", None, OLD_DATE, make(k))
                if typ != "OK":
                    failed.append((k, data))
        finally:
            stop.set()
            t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        self.assertEqual(failed, [], "%d of %d APPENDs failed"
                         % (len(failed), rounds))
        m.select("INBOX")
        typ, data = m.search(None, "ALL")
        self.assertEqual(len(data[0].split()), rounds)
        # the internal date is the one given, and the tmp/ is empty
        typ, data = m.fetch("1", "(INTERNALDATE)")
        self.assertIn(b"15-Mar-2020", data[0])
        self.assertEqual(os.listdir(os.path.join(self.inbox, "tmp")), [])

    def test_small_appends_dated_2020(self):
        self.run_race(small_message, 300)

    def test_streamed_appends_dated_2020(self):
        self.run_race(large_message, 120)


class TestAnnounce(SessionCase):
    """Bug 3: EXISTS and RECENT for what lands in the selected folder."""

    def test_append_into_selected_folder(self):
        m = self.login()
        self.select(m)
        for k in range(1, 41):
            flags = "(\\Seen)" if k % 2 else None
            msg = large_message(k) if k % 10 == 0 else small_message(k)
            self.ok(m.append("INBOX", flags, None, msg))
            self.assertEqual(self.untagged(m, "EXISTS"), [b"%d" % k])
            # the appending session is the first to see it: \Recent,
            # flags given or not
            self.assertEqual(self.untagged(m, "RECENT"), [b"%d" % k])
            data = self.ok(m.fetch(str(k), "(FLAGS BODY.PEEK[HEADER])"))
            self.assertIn(b"\\Recent", data[0][0])
            self.assertIn(b"Subject: old %d\r\n" % k, data[0][1])

    def test_append_into_other_folder_is_not_announced(self):
        m = self.login()
        self.select(m)
        self.ok(m.append("Trash", None, None, small_message(1)))
        self.assertEqual(self.untagged(m, "EXISTS"), [None])

    def test_copy_and_uid_copy_into_selected_folder(self):
        m = self.login()
        self.ok(m.append("INBOX", "(\\Flagged)", None, small_message(1)))
        self.assertEqual(self.select(m), (1, 1))
        for k in range(2, 22):
            if k % 2:
                self.ok(m.copy("1", "INBOX"))
            else:
                self.ok(m.uid("COPY", "1", "INBOX"))
            self.assertEqual(self.untagged(m, "EXISTS"), [b"%d" % k])
            data = self.ok(m.fetch(str(k), "(FLAGS)"))
            self.assertIn(b"\\Flagged", data[0])
            self.assertIn(b"\\Recent", data[0])

    def test_uid_move_within_selected_folder(self):
        m = self.login()
        self.ok(m.append("INBOX", None, None, small_message(1)))
        self.assertEqual(self.select(m), (1, 1))
        for k in range(20):
            data = self.ok(m.fetch("1", "(UID)"))
            uid = re.search(rb"UID (\d+)", data[0]).group(1)
            self.ok(m.uid("MOVE", uid, "INBOX"))
            self.assertEqual(self.untagged(m, "EXPUNGE"), [b"1"])
            self.assertEqual(self.untagged(m, "EXISTS")[-1], b"1")
            data = self.ok(m.fetch("1", "(UID FLAGS)"))
            self.assertNotIn(b"UID %s " % uid, data[0])
            self.assertIn(b"\\Recent", data[0])

    def test_move_by_another_session_announced_on_noop(self):
        m = self.login()
        other = self.login()
        self.ok(m.create("Box"))
        self.select(m)
        for k in range(1, 21):
            self.ok(other.append("Box", None, None, small_message(k)))
            self.ok(other.select("Box"))
            self.ok(other.uid("MOVE", "1:*", "INBOX"))
            self.ok(other.close())
            self.ok(m.noop())
            self.assertEqual(self.untagged(m, "EXISTS"), [b"%d" % k])
            self.assertEqual(self.untagged(m, "RECENT"), [b"%d" % k])
            data = self.ok(m.fetch(str(k), "(FLAGS)"))
            self.assertIn(b"\\Recent", data[0])


class TestRecent(SessionCase):
    """\\Recent: one session per message, consistent counts everywhere."""

    def status_recent(self, m, box="INBOX"):
        data = self.ok(m.status(box, "(MESSAGES RECENT)"))
        return int(re.search(rb"RECENT (\d+)", data[0]).group(1))

    def test_one_session_gets_recent(self):
        a, b = self.login(), self.login()
        watcher = self.login()
        self.select(a)
        self.select(b)
        appender = self.login()
        claimed = {id(a): 0, id(b): 0}
        total = 0
        for k in range(30):
            flags = ["(\\Seen)", None, "(\\Flagged \\Answered)"][k % 3]
            self.ok(appender.append("INBOX", flags, None, small_message(k)))
            total += 1
            # nobody has seen it: EXAMINE and STATUS say so, and do not
            # take it
            self.assertEqual(self.status_recent(watcher), 1)
            self.ok(watcher.select("INBOX", readonly=True))
            self.assertEqual(self.untagged(watcher, "RECENT"), [b"1"])
            watcher.close()
            first, second = (a, b) if k % 2 else (b, a)
            # RECENT counts the session's own \\Recent messages
            claimed[id(first)] += 1
            self.ok(first.noop())
            self.assertEqual(self.untagged(first, "EXISTS"),
                             [b"%d" % total])
            self.assertEqual(self.untagged(first, "RECENT"),
                             [b"%d" % claimed[id(first)]])
            self.ok(second.noop())
            self.assertEqual(self.untagged(second, "EXISTS"),
                             [b"%d" % total])
            self.assertEqual(self.untagged(second, "RECENT"),
                             [b"%d" % claimed[id(second)]])
            data = self.ok(first.fetch(str(total), "(FLAGS)"))
            self.assertIn(b"\\Recent", data[0])
            data = self.ok(second.fetch(str(total), "(FLAGS)"))
            self.assertNotIn(b"\\Recent", data[0])
            # claimed now: STATUS and a fresh SELECT see none
            self.assertEqual(self.status_recent(watcher), 0)
            self.ok(watcher.select("INBOX"))
            self.assertEqual(self.untagged(watcher, "RECENT"), [b"0"])
            watcher.close()

    def test_delivery_agent_drop_is_recent_once(self):
        a = self.login()
        self.select(a)
        new = os.path.join(self.inbox, "new")
        for k in range(20):
            name = "%d.M%dP1.mda" % (int(time.time()), k)
            with open(os.path.join(new, name), "wb") as f:
                f.write(small_message(k))
            b = self.login()
            self.assertEqual(self.status_recent(b), 1)
            self.ok(b.select("INBOX"))
            self.assertEqual(self.untagged(b, "RECENT"), [b"1"])
            self.ok(a.noop())
            self.assertEqual(self.untagged(a, "RECENT"), [b"0"])
            self.assertEqual(self.untagged(a, "EXISTS"), [b"%d" % (k + 1)])
            rs.logout_quietly(b)

    def test_racing_selects_share_out_recent(self):
        """Sessions selecting at once: each new message is \\Recent in
        exactly one of them."""
        appender = self.login()
        for rnd in range(15):
            for k in range(5):
                self.ok(appender.append("INBOX", "(\\Seen)" if k % 2
                                        else None, None, small_message(k)))
            counts = [None] * 3
            sessions = [self.login() for _ in counts]

            def select(i):
                self.ok(sessions[i].select("INBOX"))
                counts[i] = int(self.untagged(sessions[i], "RECENT")[0])

            threads = [threading.Thread(target=select, args=(i,))
                       for i in range(len(sessions))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(sum(counts), 5, "round %d: %r" % (rnd, counts))
            for m in sessions:
                rs.logout_quietly(m)


if __name__ == "__main__":
    unittest.main()
