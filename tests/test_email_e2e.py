"""End-to-end sending of a campaign e-mail step through a real SMTP session.

Everything is real except the guard that keeps Odoo from opening SMTP
connections during tests (``ir.mail_server._disable_send``), which is lifted
for these tests only: mails are rendered by the mass-mailing composer, sent by
``mail.mail.send()`` over ``smtplib`` to a loopback SMTP sink
(tests/loopback_smtp.py, 127.0.0.1, free port) and checked as received.
"""

from collections import Counter
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import TransactionCase, freeze_time, tagged

from odoo.addons.base.models.ir_mail_server import IrMail_Server

from .common import SmtpSinkMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestEmailEndToEnd(SmtpSinkMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_smtp_sink("Loopback sink (e2e test)", "marketing@e2e.example")

    def setUp(self):
        super().setUp()
        # lift the test guard only: connections, SMTP dialogue and every
        # database write are the real ones
        self.startPatcher(patch.object(IrMail_Server, "_disable_send", return_value=False))
        self.sink.reset()

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def _make_contacts(self, count, prefix):
        # a non-ASCII letter checks the encoding of headers and body too
        return self.env["res.partner"].create(
            [
                {
                    "name": f"Zoé {prefix.capitalize()} {n:04d}",
                    "email": f"{prefix}{n:04d}@e2e.example",
                }
                for n in range(1, count + 1)
            ]
        )

    def _make_campaign(self, prefix):
        return self._make_sink_campaign(
            f"E2E campaign {prefix}",
            prefix,
            "@e2e.example",
            "Hello {{ object.name }}",
            '<p>Hi <t t-out="object.name"/></p>',
        )

    def _html(self, message):
        part = message.get_body(preferencelist=("html",))
        self.assertTrue(part, "the message has an HTML part")
        return part.get_content()

    # ------------------------------------------------------------------
    # tests
    # ------------------------------------------------------------------

    def test_email_step_end_to_end(self):
        contacts = self._make_contacts(300, "eetoe")
        campaign, activity = self._make_campaign("eetoe")
        # three batches of two chunks, over one SMTP session kept for the run
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.batch_size", 100)
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.send_chunk_size", 50)

        campaign.action_start()
        traces = self.env["mkt.trace"].search([("campaign_id", "=", campaign.id)])
        self.assertEqual(len(traces), 300)
        self.assertEqual(set(traces.mapped("state")), {"scheduled"})
        self.assertEqual(self.sink.count, 0, "enrolment sends nothing")
        connections = self.sink.connections_total  # reset() does not reset it

        self._run_cron()

        # one message per contact, each addressed to that contact only
        self.assertEqual(self.sink.count, 300)
        self.assertEqual(
            self.sink.connections_total - connections,
            1,
            "one SMTP session for the six chunks of the queue run",
        )
        envelopes = self.sink.envelopes()
        self.assertEqual(len(envelopes), 300)
        by_email = {partner.email: partner for partner in contacts}
        received = Counter(rcpt for env in envelopes for rcpt in env.rcpt_tos)
        self.assertEqual(dict(received), dict.fromkeys(by_email, 1))
        for envelope in envelopes:
            self.assertEqual(len(envelope.rcpt_tos), 1)
            partner = by_email[envelope.rcpt_tos[0]]
            message = envelope.message
            self.assertIn(partner.email, message["To"])
            self.assertTrue(envelope.mail_from, "the envelope has a sender")
            self.assertIn("@", message["From"])
            # placeholders rendered for this very contact
            self.assertEqual(message["Subject"], f"Hello {partner.name}")
            html = self._html(message)
            self.assertIn(f"Hi {partner.name}", html)
            self.assertNotIn("object.name", html)
            self.assertNotIn("t-out", html)

        # the queue: every step processed, once
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        self.assertTrue(all(traces.mapped("processed_date")))
        self.assertEqual(set(traces.mapped("attempts")), {1})
        self.assertFalse(any(traces.mapped("error_message")))

        # Email Marketing's statistics, linked to the steps one to one
        mailing_traces = self.env["mailing.trace"].search(
            [("mass_mailing_id", "=", activity.mailing_id.id)]
        )
        self.assertEqual(len(mailing_traces), 300)
        self.assertEqual(set(mailing_traces.mapped("trace_status")), {"sent"})
        self.assertEqual(mailing_traces.mkt_trace_id, traces)
        for mtrace in mailing_traces:
            self.assertEqual(mtrace.res_id, mtrace.mkt_trace_id.res_id)
            self.assertEqual(mtrace.model, "res.partner")
            self.assertEqual(mtrace.email, by_email[mtrace.email].email)
        self.assertEqual(activity.processed_count, 300)
        # sent messages are deleted (the mailing keeps no archive), as Odoo does
        self.assertFalse(
            self.env["mail.mail"].search([("mailing_id", "=", activity.mailing_id.id)])
        )
        self.assertEqual(
            set(campaign.participant_ids.mapped("state")),
            {"completed"},
            "a one-step workflow is over for everybody",
        )

        # nothing left to do: another run sends nothing
        self._run_cron()
        self.assertEqual(self.sink.count, 300)

    def test_email_step_permanent_failure(self):
        contacts = self._make_contacts(10, "eefail")
        campaign, activity = self._make_campaign("eefail")
        campaign.action_start()
        traces = self.env["mkt.trace"].search([("campaign_id", "=", campaign.id)])
        # the first 2 recipients are refused for good
        self.sink.fail_next(2, code=550)
        self._run_cron()

        self.assertEqual(self.sink.count, 8)
        failed = traces.filtered(lambda t: t.state == "failed")
        self.assertEqual(len(failed), 2)
        self.assertEqual(set((traces - failed).mapped("state")), {"processed"})
        for trace in failed:
            self.assertIn("550", trace.error_message)
            self.assertTrue(trace.processed_date)
        self.assertEqual(set(failed.mapped("attempts")), {1})
        # Odoo keeps a message that failed (for a retry from Email Marketing),
        # still to be deleted once sent; the sent ones are gone
        mails = self.env["mail.mail"].search([("mailing_id", "=", activity.mailing_id.id)])
        self.assertEqual(len(mails), 2)
        self.assertEqual(set(mails.mapped("state")), {"exception"})
        self.assertTrue(all(mails.mapped("auto_delete")))
        self.assertEqual(
            set(mails.mapped("email_to") + mails.recipient_ids.mapped("email"))
            & set(contacts.mapped("email")),
            set(failed.mapped("email")),
        )
        mailing_traces = self.env["mailing.trace"].search(
            [("mass_mailing_id", "=", activity.mailing_id.id)]
        )
        self.assertEqual(
            sorted(mailing_traces.mapped("trace_status")), ["error"] * 2 + ["sent"] * 8
        )
        self._run_cron()
        self.assertEqual(self.sink.count, 8, "a failed step is not retried")

    def test_email_step_temporary_failure_retried(self):
        self._make_contacts(20, "eeretry")
        campaign, activity = self._make_campaign("eeretry")
        now = fields.Datetime.now()
        with freeze_time(now):
            campaign.action_start()
            traces = self.env["mkt.trace"].search([("campaign_id", "=", campaign.id)])
            self.assertEqual(len(traces), 20)
            # the first 5 recipients get "451 4.3.0 Temporary failure"
            self.sink.fail_next(5, code=451)
            self._run_cron()

        self.assertEqual(self.sink.count, 15)
        retried = traces.filtered(lambda t: t.state == "scheduled")
        sent = traces - retried
        self.assertEqual(len(retried), 5)
        self.assertEqual(set(sent.mapped("state")), {"processed"})
        self.assertEqual(set(traces.mapped("attempts")), {1})
        for trace in retried:
            self.assertIn("Attempt 1 failed, retrying", trace.error_message)
            self.assertIn("451", trace.error_message)
            self.assertFalse(trace.processed_date)
            self.assertEqual(trace.schedule_date, now + timedelta(minutes=5))
        # the failed attempt leaves no statistics nor message behind: the retry
        # makes new ones
        self.assertEqual(retried.mailing_trace_ids, self.env["mailing.trace"])
        self.assertFalse(
            self.env["mail.mail"].search([("mailing_id", "=", activity.mailing_id.id)])
        )
        self.assertEqual(len(sent.mailing_trace_ids), 15)
        received_first = set(self.sink.recipients())
        self.assertFalse(received_first & set(retried.mapped("email")))

        # not due yet: nothing happens
        with freeze_time(now + timedelta(minutes=4)):
            self._run_cron()
        self.assertEqual(self.sink.count, 15)
        self.assertEqual(set(retried.mapped("state")), {"scheduled"})

        # past the back-off the retries go out, once each
        with freeze_time(now + timedelta(minutes=6)):
            self._run_cron()
        self.assertEqual(self.sink.count, 20)
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        self.assertEqual(set(retried.mapped("attempts")), {2})
        self.assertEqual(set(sent.mapped("attempts")), {1})
        self.assertTrue(all(retried.mapped("processed_date")))
        self.assertEqual(
            Counter(self.sink.recipients()), Counter(dict.fromkeys(traces.mapped("email"), 1))
        )
        mailing_traces = self.env["mailing.trace"].search(
            [("mass_mailing_id", "=", activity.mailing_id.id)]
        )
        self.assertEqual(len(mailing_traces), 20)
        self.assertEqual(set(mailing_traces.mapped("trace_status")), {"sent"})
        self.assertEqual(mailing_traces.mkt_trace_id, traces)
        for message in self.sink.messages:
            name = self.env["res.partner"].search([("email", "=", message.rcpt_tos[0])]).name
            self.assertEqual(message["Subject"], f"Hello {name}")
