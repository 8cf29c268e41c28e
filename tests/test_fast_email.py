"""The batch-native e-mail path of campaign steps (issue 8, section 2),
end to end over a real SMTP session into tests/loopback_smtp.py, and the
open / click tracking of its messages through Email Marketing's real
controllers."""

import email.parser
import email.policy
import re
import threading
from collections import Counter
from datetime import timedelta
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo import fields
from odoo.tests import HttpCase, freeze_time, tagged

from odoo.addons.base.models.ir_mail_server import IrMail_Server

from .common import SmtpSinkMixin

SUBJECT = "Bonjour {{ object.name }} — été ✓"
BODY = (
    '<p>Hi <t t-out="object.name"/></p>'
    '<p><a href="https://shop.example.com/offer">Our offer</a></p>'
    '<p><a href="/unsubscribe_from_list">Unsubscribe</a></p>'
)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestFastEmail(SmtpSinkMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_smtp_sink("Loopback sink (fast e-mail test)", "marketing@fast.example")
        cls.env["ir.config_parameter"].sudo().set_param("mkt_campaign.send_chunk_size", 50)

    def setUp(self):
        super().setUp()
        # lift the test guard only: the SMTP dialogue is the real one
        self.startPatcher(patch.object(IrMail_Server, "_disable_send", return_value=False))
        self.sink.reset()
        self.sink.delay = 0

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def _make_contacts(self, count, prefix):
        return self.env["res.partner"].create(
            [
                {"name": f"Zoé Ærøskøbing {n:03d}", "email": f"{prefix}{n:03d}@fast.example"}
                for n in range(1, count + 1)
            ]
        )

    def _make_campaign(self, prefix):
        campaign, activity = self._make_sink_campaign(
            f"Fast campaign {prefix}",
            prefix,
            "@fast.example",
            SUBJECT,
            BODY,
        )
        self.assertFalse(activity.mailing_id._mkt_fast_email_unsupported())
        campaign.action_start()
        traces = self.env["mkt.trace"].search([("campaign_id", "=", campaign.id)])
        return campaign, activity, traces

    def _partner_messages(self, contacts):
        return self.env["mail.message"].search_count(
            [
                ("model", "=", "res.partner"),
                ("res_id", "in", contacts.ids),
            ]
        )

    def _html(self, message):
        return message.get_body(preferencelist=("html",)).get_content()

    def _after(self, count, action):
        """Run ``action`` once the sink received ``count`` messages (the
        sink answers slowly meanwhile, so the batch is still going)."""
        self.sink.delay = 0.05

        def watch():
            if self.sink.wait_for(count, timeout=30):
                action()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------------
    # tests
    # ------------------------------------------------------------------

    def test_fast_batch(self):
        contacts = self._make_contacts(120, "fbatch")
        campaign, activity, traces = self._make_campaign("fbatch")
        self.assertEqual(len(traces), 120)
        connections = self.sink.connections_total
        partner_messages = self._partner_messages(contacts)
        self._run_cron()

        # every recipient exactly once; the three chunks of 50 went out over
        # ONE SMTP session, kept open from chunk to chunk
        self.assertEqual(self.sink.count, 120)
        self.assertEqual(self.sink.connections_total - connections, 1)
        by_email = {partner.email: partner for partner in contacts}
        received = Counter(rcpt for env in self.sink.envelopes() for rcpt in env.rcpt_tos)
        self.assertEqual(dict(received), dict.fromkeys(by_email, 1))
        mailing = activity.mailing_id
        mtraces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(len(mtraces), 120)
        self.assertEqual(set(mtraces.mapped("trace_status")), {"sent"})
        self.assertEqual(mtraces.mkt_trace_id, traces)
        by_message_id = {mtrace.message_id: mtrace for mtrace in mtraces}
        for envelope in self.sink.envelopes():
            partner = by_email[envelope.rcpt_tos[0]]
            message = envelope.message
            # placeholders rendered, non-ASCII subject and name encoded
            self.assertEqual(message["Subject"], f"Bonjour {partner.name} — été ✓")
            self.assertIn("=?utf-8?", envelope.raw.split(b"\r\n\r\n")[0].decode("ascii"))
            self.assertIn(partner.email, message["To"])
            html = self._html(message)
            self.assertIn(f"Hi {partner.name}", html)
            # replies and bounces find the trace by its Message-ID
            mtrace = by_message_id[message["Message-Id"]]
            self.assertEqual(mtrace.res_id, partner.id)
            # tracked link with the trace id, open pixel, unsubscribe link
            self.assertRegex(html, rf'href="[^"]*/r/\w+/m/{mtrace.id}"')
            self.assertNotIn("shop.example.com", html)
            self.assertIn(f"/mail/track/{mtrace.mail_mail_id_int}/", html)
            self.assertIn(f"/mailing/{mailing.id}/confirm_unsubscribe?", html)
            self.assertIn("unsubscribe_oneclick", message["List-Unsubscribe"])
            self.assertEqual(message["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            self.assertTrue(message.get_body(preferencelist=("plain",)))
        # a sample fully parsed by Python's email parser
        raw = self.sink.envelopes()[7].raw
        parsed = email.parser.BytesParser(policy=email.policy.strict).parsebytes(raw)
        self.assertEqual(parsed.get_content_type(), "multipart/alternative")
        self.assertEqual(
            sorted(part.get_content_type() for part in parsed.iter_parts()),
            ["text/html", "text/plain"],
        )
        self.assertIn("Zoé Ærøskøbing", parsed.get_body(("plain",)).get_content())
        # no mail.mail nor mail.message per recipient
        self.assertFalse(self.env["mail.mail"].search([("mailing_id", "=", mailing.id)]))
        self.assertFalse(
            self.env["mail.message"].search_count(
                [
                    ("message_id", "in", mtraces.mapped("message_id")),
                ]
            )
        )
        self.assertEqual(self._partner_messages(contacts), partner_messages)
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        self.assertEqual(mailing.state, "done")
        self.assertEqual(activity.processed_count, 120)
        self._run_cron()
        self.assertEqual(self.sink.count, 120, "nothing is sent twice")

    def test_fast_refused_recipient_mid_batch(self):
        self._make_contacts(20, "frefuse")
        _campaign, activity, traces = self._make_campaign("frefuse")
        thread = self._after(6, lambda: self.sink.fail_next(1, code=550))
        self._run_cron()
        thread.join(5)

        self.assertEqual(self.sink.count, 19)
        failed = traces.filtered(lambda t: t.state == "failed")
        self.assertEqual(len(failed), 1)
        self.assertIn("550", failed.error_message)
        self.assertNotIn(failed.email, self.sink.recipients())
        self.assertEqual(set((traces - failed).mapped("state")), {"processed"})
        # Odoo keeps the refused message for a retry from Email Marketing
        mail = self.env["mail.mail"].search([("mailing_id", "=", activity.mailing_id.id)])
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail.state, "exception")
        self.assertEqual(failed.mailing_trace_ids.trace_status, "error")
        self.assertEqual(failed.mailing_trace_ids.mail_mail_id, mail)

    def test_fast_dropped_connection_mid_batch(self):
        self._make_contacts(20, "fdrop")
        _campaign, _activity, traces = self._make_campaign("fdrop")
        # "421 closing connection" to a MAIL FROM: smtplib drops the session
        # (no freeze_time here: it would freeze the sink's clock too)
        thread = self._after(8, lambda: self.sink.fail_next(1, code=421, stage="mail"))
        self._run_cron()
        thread.join(5)
        first = set(self.sink.recipients())
        sent = traces.filtered(lambda t: t.state == "processed")
        retried = traces.filtered(lambda t: t.state == "scheduled")
        self.assertGreaterEqual(len(first), 8)
        self.assertLess(len(first), 20)
        self.assertEqual(set(sent.mapped("email")), first)
        self.assertEqual(len(retried), 20 - len(first), "only the unsent rest is retried")
        self.assertFalse(retried.mailing_trace_ids)
        for trace in retried:
            self.assertIn("Attempt 1 failed, retrying", trace.error_message)

        self.sink.delay = 0
        with freeze_time(fields.Datetime.now() + timedelta(minutes=10)):
            self._run_cron()
        received = Counter(self.sink.recipients())
        self.assertEqual(len(received), 20)
        self.assertEqual(set(received.values()), {1}, "nobody receives it twice")
        self.assertEqual(set(traces.mapped("state")), {"processed"})

    def test_fast_blacklist_and_duplicates(self):
        contacts = self._make_contacts(6, "fblack")
        self.env["mail.blacklist"].sudo()._add(contacts[1].email)
        _campaign, _activity, traces = self._make_campaign("fblack")
        self._run_cron()
        self.assertEqual(self.sink.count, 5)
        self.assertNotIn(contacts[1].email, self.sink.recipients())
        rejected = traces.filtered(lambda t: t.state == "rejected")
        self.assertEqual(rejected.res_id, contacts[1].id)
        self.assertEqual(rejected.mailing_trace_ids.trace_status, "cancel")
        self.assertEqual(rejected.mailing_trace_ids.failure_type, "mail_bl")

    def test_fast_open_and_click_tracking(self):
        contacts = self._make_contacts(2, "ftrack")
        campaign, _activity, traces = self._make_campaign("ftrack")
        self._run_cron()
        self.assertEqual(self.sink.count, 2)
        message = self.sink.messages_to(contacts[0].email)[0]
        html = self._html(message)
        trace = traces.filtered(lambda t: t.res_id == contacts[0].id)
        other = traces - trace
        self.assertFalse(trace.open_datetime)

        pixel = re.search(r'src="([^"]*/mail/track/[^"]+)"', html).group(1)
        response = self.url_open(urlsplit(pixel).path)
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()
        self.assertTrue(trace.open_datetime)
        self.assertEqual(trace.mailing_trace_ids.trace_status, "open")
        self.assertFalse(other.open_datetime)

        link = re.search(r'href="([^"]*/r/\w+/m/\d+)"', html).group(1)
        response = self.url_open(urlsplit(link).path, allow_redirects=False)
        self.assertIn(response.status_code, (301, 302, 303))
        self.assertTrue(response.headers["Location"].startswith("https://shop.example.com/offer"))
        self.env.invalidate_all()
        self.assertTrue(trace.click_datetime)
        self.assertTrue(trace.mailing_trace_ids.links_click_datetime)
        self.assertFalse(other.click_datetime)
        self.assertEqual(campaign.opened_count, 1)
        self.assertEqual(campaign.clicked_count, 1)

    def test_fallback_to_composer_path(self):
        """What the fast path does not support goes the composer way, as
        before: here a mailing that keeps an archive of every message."""
        contacts = self._make_contacts(3, "fkeep")
        _campaign, activity, traces = self._make_campaign("fkeep")
        activity.mailing_id.keep_archives = True
        self.assertEqual(activity.mailing_id._mkt_fast_email_unsupported(), "keep_archives")
        self._run_cron()
        self.assertEqual(sorted(self.sink.recipients()), sorted(contacts.mapped("email")))
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        mails = self.env["mail.mail"].search([("mailing_id", "=", activity.mailing_id.id)])
        self.assertEqual(len(mails), 3, "the archive is kept")
        self.assertEqual(set(mails.mapped("state")), {"sent"})
        # the kill switch sends everything the composer way too
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.fast_email", "0")
        activity.mailing_id.keep_archives = False
        self.assertEqual(activity.mailing_id._mkt_fast_email_unsupported(), "disabled")

    def test_fast_session_reused_across_chunks(self):
        """One SMTP session per worker for the whole queue run: reused from
        chunk to chunk, closed at the end of the run; a session the server
        dropped between two chunks is replaced, nothing is lost."""
        from ..tools import mail_batch

        self._make_contacts(130, "freuse")
        _campaign, _activity, traces = self._make_campaign("freuse")
        connections = self.sink.connections_total
        opened = []
        connect = mail_batch.SmtpBatch.connect

        def counting_connect(batch, smtp_from):
            opened.append(smtp_from)
            return connect(batch, smtp_from)

        with patch.object(mail_batch.SmtpBatch, "connect", counting_connect):
            self._run_cron()
        self.assertEqual(self.sink.count, 130)
        self.assertEqual(len(opened), 1, "one session for the three chunks")
        self.assertEqual(self.sink.connections_total - connections, 1)
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        self.assertFalse(
            getattr(mail_batch._shared, "batches", None),
            "closed at the end of the run",
        )
        # outside of a queue run (e.g. a request thread) nothing is kept open
        self.assertFalse(mail_batch.SmtpBatch.shared(self.mail_server, self.env).kept)

        # the server drops the kept session between two chunks: the next
        # chunk opens a new one (its NOOP fails) and sends everything once
        self.sink.reset()
        self._make_contacts(100, "fdropidle")
        _campaign, _activity, traces = self._make_campaign("fdropidle")
        send = mail_batch.SmtpBatch.send
        calls = []

        def send_then_drop(batch, messages, **kwargs):
            result = send(batch, messages, **kwargs)
            calls.append(len(messages))
            if len(calls) == 1:
                batch.session.sock.close()  # as an idle timeout on the server would
            return result

        with patch.object(mail_batch.SmtpBatch, "send", send_then_drop):
            self._run_cron()
        self.assertEqual(calls, [50, 50])
        received = Counter(self.sink.recipients())
        self.assertEqual(len(received), 100)
        self.assertEqual(set(received.values()), {1})
        self.assertEqual(set(traces.mapped("state")), {"processed"})

    def test_fast_unsubscribe(self):
        """The unsubscribe link and the one-click List-Unsubscribe header of a
        campaign e-mail sent by the fast path work as for a plain mailing:
        the recipient is blocklisted and the next send skips them."""
        contacts = self._make_contacts(2, "funsub")
        _campaign, activity, _traces = self._make_campaign("funsub")
        self._run_cron()
        self.assertEqual(self.sink.count, 2)
        message = self.sink.messages_to(contacts[0].email)[0]
        html = self._html(message)
        mailing = activity.mailing_id

        link = re.search(r'href="([^"]*/mailing/\d+/confirm_unsubscribe\?[^"]+)"', html).group(1)
        link = urlsplit(link.replace("&amp;", "&"))
        response = self.url_open(f"{link.path}?{link.query}")
        self.assertEqual(response.status_code, 200)
        oneclick = message["List-Unsubscribe"].strip("<>")
        self.assertIn(f"/mailing/{mailing.id}/unsubscribe_oneclick?", oneclick)
        self.assertIn(f"document_id={contacts[0].id}", oneclick)
        oneclick = urlsplit(oneclick)
        response = self.url_open(
            f"{oneclick.path}?{oneclick.query}",
            data={"List-Unsubscribe": "One-Click"},
        )
        self.assertEqual(response.status_code, 200)
        blocked = self.env["mail.blacklist"].sudo().search([("active", "=", True)])
        self.assertIn(contacts[0].email, blocked.mapped("email"))
        self.assertNotIn(contacts[1].email, blocked.mapped("email"))

        # a new campaign on the same contacts: the unsubscribed one is skipped
        self.sink.reset()
        _campaign2, _activity2, traces2 = self._make_campaign("funsub")
        self._run_cron()
        self.assertEqual(self.sink.recipients(), [contacts[1].email])
        rejected = traces2.filtered(lambda t: t.state == "rejected")
        self.assertEqual(rejected.res_id, contacts[0].id)
        self.assertEqual(rejected.mailing_trace_ids.failure_type, "mail_bl")
