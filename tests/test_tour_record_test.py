from unittest.mock import patch

from odoo.tests import HttpCase, tagged

from odoo.addons.base.models.ir_mail_server import IrMail_Server

from .common import SmtpSinkMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestRecordTestTour(SmtpSinkMixin, HttpCase):
    """The test screen and Pause / Resume, in the web client."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_smtp_sink("Loopback sink (test tour)", "marketing@tour.example")
        cls.bob = cls.env["res.partner"].create(
            {"name": "Bob Tour", "email": "bob.tour@example.com"}
        )
        cls.campaign = cls.env["mkt.campaign"].create(
            {
                "name": "Tour test",
                "model_id": cls.env["ir.model"]._get_id("res.partner"),
                "domain": repr([("email", "=like", "%@tour.example")]),
            }
        )
        Activity = cls.env["mkt.activity"]
        cls.welcome = Activity.create(
            {
                "name": "Tour welcome",
                "campaign_id": cls.campaign.id,
                "trigger_type": "begin",
                "subject": "Welcome {{ object.name }}",
                "body_html": "<p>Hello</p>",
            }
        )
        cls.thanks = Activity.create(
            {
                "name": "Tour thanks",
                "campaign_id": cls.campaign.id,
                "parent_id": cls.welcome.id,
                "trigger_type": "email_open",
                "subject": "Thanks",
                "body_html": "<p>Thanks</p>",
            }
        )
        cls.reminder = Activity.create(
            {
                "name": "Tour reminder",
                "campaign_id": cls.campaign.id,
                "parent_id": cls.welcome.id,
                "trigger_type": "email_not_open",
                "interval_number": 2,
                "interval_type": "days",
                "subject": "Reminder",
                "body_html": "<p>Reminder</p>",
            }
        )
        (cls.welcome | cls.thanks | cls.reminder).mailing_id.mail_server_id = cls.mail_server

    def test_record_test_opened_branch(self):
        # Odoo opens no SMTP connection under tests: lifted, the messages
        # really reach the loopback sink (as in test_email_e2e.py)
        self.startPatcher(patch.object(IrMail_Server, "_disable_send", return_value=False))
        self.sink.reset()
        self.start_tour(
            f"/odoo/action-mkt_campaign.mkt_campaign_action/{self.campaign.id}",
            "mkt_campaign_record_test",
            login="admin",
        )
        self.env.invalidate_all()
        test = self.campaign.participant_ids
        self.assertEqual(
            (test.res_id, test.is_record_test, test.state), (self.bob.id, True, "canceled")
        )
        states = {t.activity_id.name: t.state for t in test.trace_ids}
        self.assertEqual(
            states,
            {"Tour welcome": "processed", "Tour thanks": "processed", "Tour reminder": "canceled"},
        )
        self.assertEqual(self.sink.count, 2, "the welcome and the thanks, to Bob only")
        self.assertEqual(
            {rcpt for env in self.sink.envelopes() for rcpt in env.rcpt_tos},
            {"bob.tour@example.com"},
        )

    def test_pause_resume(self):
        self.campaign.action_start()
        self.start_tour(
            f"/odoo/action-mkt_campaign.mkt_campaign_action/{self.campaign.id}",
            "mkt_campaign_pause_resume",
            login="admin",
        )
        self.env.invalidate_all()
        self.assertFalse(self.campaign.is_paused)
        self.assertEqual(self.campaign.state, "running")
