"""Per-recipient payload (issue 12 item 6) and provider feedback with the
history of every attempt (item 7)."""

import hashlib
import hmac
import json
from datetime import timedelta
from unittest.mock import patch

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import HttpCase, TransactionCase, freeze_time, tagged

from odoo.addons.base.models.ir_mail_server import IrMail_Server
from odoo.addons.mail.tests.common import mail_new_test_user

from .common import T0, MktCampaignCommon, SmtpSinkMixin
from .test_queue import closed_loopback_port

MIN = timedelta(minutes=1)
PAYLOAD_SUBJECT = "Your code {{ object_payload.get('coupon', 'none') }}"
PAYLOAD_BODY = (
    '<p>Hello <t t-out="object.name"/>, your code is '
    "<t t-out=\"object_payload.get('coupon', 'none')\"/>.</p>"
)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPayload(MktCampaignCommon):
    def _mail_to(self, partner):
        mails = [m for m in self._mails if any(partner.email in to for to in m["email_to"])]
        self.assertEqual(len(mails), 1, f"one e-mail to {partner.name}")
        return mails[0]

    def test_payload_set_through_api_in_rendered_message(self):
        """An integration writes a participant's payload (a campaign user,
        over the external API): the campaign's e-mail reads it, each
        recipient their own."""
        campaign, steps = self._create_campaign(
            [
                (
                    "welcome",
                    {"subject": PAYLOAD_SUBJECT, "body_html": PAYLOAD_BODY},
                )
            ],
            domain=repr([("id", "in", (self.alice | self.bob | self.carol).ids)]),
        )
        with freeze_time(T0):
            campaign.action_start()
        participants = campaign.participant_ids
        alice = participants.filtered(lambda p: p.res_id == self.alice.id)
        bob = participants.filtered(lambda p: p.res_id == self.bob.id)
        # what an RPC write by the campaign user does
        alice.with_user(self.user_mkt_user).write({"payload": {"coupon": "ALICE-10"}})
        bob.with_user(self.user_mkt_user).write({"payload": {"coupon": "BOB-20", "tier": 2}})
        self.assertEqual(alice.payload, {"coupon": "ALICE-10"})
        with self.assertRaises(ValidationError):
            bob.with_user(self.user_mkt_user).write({"payload": ["not", "an", "object"]})
        with self.assertRaises(AccessError):
            # the rest of a participant is the campaign's
            bob.with_user(self.user_mkt_user).write({"state": "canceled"})
        self._run_queue(T0)
        self.assertEqual(self._mail_to(self.alice)["subject"], "Your code ALICE-10")
        self.assertIn("your code is ALICE-10.", self._mail_to(self.alice)["body"])
        self.assertIn("your code is BOB-20.", self._mail_to(self.bob)["body"])
        self.assertEqual(self._mail_to(self.carol)["subject"], "Your code none")
        # shown in the queue and exported with the Event Log
        trace = steps["welcome"].trace_ids.filtered(lambda t: t.res_id == self.bob.id)
        self.assertIn('"coupon": "BOB-20"', trace.payload_text)
        event = self.env["mkt.event"].search(
            [("trace_id", "=", trace.id), ("event_type", "=", "sent")]
        )
        self.assertEqual(json.loads(event.payload), {"coupon": "BOB-20", "tier": 2})

    def test_payload_from_mapping_at_enrolment(self):
        """The campaign's mapping copies fields of each record into its
        participant's payload at enrolment; the SMS reads it."""
        self.alice.ref = "A-001"
        self.bob.ref = "B-002"
        campaign, steps = self._create_campaign(
            [
                (
                    "sms",
                    {
                        "activity_type": "sms",
                        "body_plaintext": "Member {{ object_payload.get('member', '?') }}",
                    },
                )
            ]
        )
        campaign.payload_field_ids = [
            (
                0,
                0,
                {
                    "field_id": self.env["ir.model.fields"]._get("res.partner", "ref").id,
                    "key": "member",
                },
            ),
            (
                0,
                0,
                {
                    "field_id": self.env["ir.model.fields"]._get("res.partner", "is_company").id,
                    "key": "company",
                },
            ),
        ]
        with freeze_time(T0):
            campaign.action_start()
        by_res = {p.res_id: p.payload for p in campaign.participant_ids}
        self.assertEqual(by_res[self.alice.id], {"member": "A-001", "company": False})
        self.assertEqual(by_res[self.carol.id], {"company": False})
        self._run_queue(T0)

        def body(partner):
            mtrace = self._mailing_trace(self._traces(steps["sms"], partner))
            sms = self.env["sms.sms"].sudo().search([("mailing_trace_ids", "in", mtrace.ids)])
            return sms.body.split("\n")[0]

        self.assertEqual(body(self.alice), "Member A-001")
        self.assertEqual(body(self.bob), "Member B-002")
        self.assertEqual(body(self.carol), "Member ?")

    def test_mapping_refuses_restricted_field(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        field = self.env["ir.model.fields"].search(
            [
                ("model", "=", "res.partner"),
                ("store", "=", True),
                ("groups", "!=", False),
                ("ttype", "in", ("char", "integer", "many2one")),
            ],
            limit=1,
        )
        if field:
            with self.assertRaises(ValidationError):
                campaign.payload_field_ids = [(0, 0, {"field_id": field.id, "key": "x"})]

    def test_payload_write_refused_to_other_company(self):
        """A campaign user of another company cannot write the payload of
        this company's participants."""
        other = self.env["res.company"].create({"name": "Other Company"})
        intruder = mail_new_test_user(
            self.env,
            login="mkt_other_company",
            name="Olga Other",
            email="olga@example.com",
            company_id=other.id,
            company_ids=[(6, 0, other.ids)],
            groups="base.group_user,mkt_campaign.group_mkt_campaign_user",
        )
        campaign, _steps = self._create_campaign([("welcome", {})], company_id=self.env.company.id)
        with freeze_time(T0):
            campaign.action_start()
        participant = campaign.participant_ids[:1]
        with self.assertRaises(AccessError):
            participant.with_user(intruder).write({"payload": {"coupon": "STOLEN"}})
        # and cannot read it in a preview either
        Render = (
            self.env["mail.render.mixin"]
            .with_user(intruder)
            .with_context(mkt_payload_participant_ids=(participant.id,))
        )
        participant.sudo().payload = {"coupon": "SECRET"}
        self.env.flush_all()
        self.assertNotIn("SECRET", str(Render.sudo(False)._render_eval_context()["object_payload"]))


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPayloadFastEmail(SmtpSinkMixin, TransactionCase):
    """The payload on the batch-native e-mail path, over SMTP."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_smtp_sink("Loopback sink (payload test)", "marketing@payload.example")

    def setUp(self):
        super().setUp()
        self.startPatcher(patch.object(IrMail_Server, "_disable_send", return_value=False))
        self.sink.reset()

    def test_payload_in_fast_email(self):
        first, second = self.env["res.partner"].create(
            [
                {"name": "Paula One", "email": "plone@payload.example"},
                {"name": "Peter Two", "email": "pltwo@payload.example"},
            ]
        )
        campaign, activity = self._make_sink_campaign(
            "Payload fast",
            "pl",
            "@payload.example",
            PAYLOAD_SUBJECT,
            PAYLOAD_BODY,
        )
        self.assertFalse(activity.mailing_id._mkt_fast_email_unsupported())
        campaign.action_start()
        campaign.participant_ids.filtered(lambda p: p.res_id == first.id).payload = {
            "coupon": "FAST-1"
        }
        self._run_cron()
        received = {env.rcpt_tos[0]: env.message for env in self.sink.envelopes()}
        self.assertEqual(str(received[first.email]["Subject"]), "Your code FAST-1")
        html = received[first.email].get_body(preferencelist=("html",)).get_content()
        self.assertIn("your code is FAST-1.", html)
        self.assertEqual(str(received[second.email]["Subject"]), "Your code none")


@tagged("post_install", "-at_install", "mkt_campaign")
class TestAttemptHistory(MktCampaignCommon):
    def test_three_attempts_kept(self):
        """The SMTP server is down twice, then back: the step keeps its three
        attempts (two retried failures with the answer, then sent)."""
        params = self.env["ir.config_parameter"]
        params.set_param("mkt_campaign.max_attempts", 5)
        params.set_param("mkt_campaign.retry_delay_minutes", 5)
        down = self.env["ir.mail_server"].create(
            {
                "name": "Down",
                "smtp_host": "127.0.0.1",
                "smtp_port": closed_loopback_port(),
                "smtp_encryption": "none",
            }
        )
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "=", self.bob.id)]),
        )
        steps["welcome"].mailing_id.mail_server_id = down
        self._launch(campaign)
        trace = steps["welcome"].trace_ids

        def run(when):
            with freeze_time(when), patch.object(IrMail_Server, "_disable_send", lambda *a: False):
                self.env["mkt.trace"]._cron_execute_activities()
            self.env.invalidate_all()

        run(T0)
        run(T0 + 5 * MIN)
        self.assertEqual((trace.state, trace.attempts), ("scheduled", 2))
        steps["welcome"].mailing_id.mail_server_id = False
        self._run_queue(T0 + 15 * MIN)
        self.assertEqual(trace.state, "processed")
        history = trace.attempt_ids.sorted("attempt")
        self.assertEqual(history.mapped("attempt"), [1, 2, 3])
        self.assertEqual(history.mapped("outcome"), ["retry", "retry", "processed"])
        self.assertTrue(history[0].answer, "the server's answer is kept")
        self.assertEqual(history.mapped("attempt_date"), [T0, T0 + 5 * MIN, T0 + 15 * MIN])


@tagged("post_install", "-at_install", "mkt_campaign")
class TestProviderFeedback(MktCampaignCommon, HttpCase):
    SECRET = "feedback-secret-for-tests"

    def _post(self, payload, secret=SECRET, signature=None):
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None and secret:
            signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if signature:
            headers["X-Mkt-Signature"] = signature
        return self.url_open("/mkt_campaign/feedback", data=body, headers=headers)

    def test_complaint_blacklists_and_feedback_is_kept(self):
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        self._run_queue(T0)
        step = steps["welcome"]
        alice = self._traces(step, self.alice)
        bob = self._traces(step, self.bob)
        carol = self._traces(step, self.carol)
        events = {
            "events": [
                {
                    "message_id": self._mailing_trace(alice).message_id,
                    "event": "delivered",
                    "timestamp": 1772442000,
                },
                {
                    "message_id": self._mailing_trace(alice).message_id,
                    "event": "complaint",
                    "answer": "abuse report from example.com FBL",
                },
                {
                    "message_id": self._mailing_trace(bob).message_id,
                    "event": "bounce",
                    "answer": "550 5.1.1 user unknown",
                },
                {
                    "message_id": self._mailing_trace(carol).message_id,
                    "event": "blocked",
                    "answer": "554 blocked by policy",
                },
                {"message_id": "<unknown@example.com>", "event": "complaint"},
            ]
        }
        Blacklist = self.env["mail.blacklist"]
        self.env.flush_all()
        # closed without a secret, refused unsigned or badly signed: no change
        self.assertEqual(self._post(events, secret=None).status_code, 403)
        self.env["ir.config_parameter"].sudo().set_param(
            "mkt_campaign.feedback_secret", self.SECRET
        )
        self.env.flush_all()
        self.assertEqual(self._post(events, secret=None).status_code, 403)
        self.assertEqual(self._post(events, signature="sha256=00").status_code, 403)
        self.env.invalidate_all()
        self.assertFalse(alice.feedback)
        self.assertFalse(Blacklist.search([("email", "=", "alice@example.com")]))

        response = self._post(events)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"used": 4})
        self.env.invalidate_all()
        self.assertEqual(
            alice.feedback, "complained", "a late 'delivered' never hides the complaint"
        )
        self.assertEqual(alice.feedback_answer, "abuse report from example.com FBL")
        self.assertEqual(
            set(alice.attempt_ids.mapped("outcome")), {"processed", "delivered", "complained"}
        )
        # the complaint blacklists the address, as Email Marketing does for bounces
        self.assertTrue(Blacklist.search([("email", "=", "alice@example.com")]))
        self.assertFalse(Blacklist.search([("email", "=", "carol@example.com")]))
        # the hard bounce goes through Email Marketing's own bounce
        self.assertEqual(self._mailing_trace(bob).trace_status, "bounce")
        self.assertTrue(bob.bounce_datetime)
        self.assertEqual(
            (bob.feedback, bob.feedback_answer), ("bounced_hard", "550 5.1.1 user unknown")
        )
        self.assertEqual(carol.feedback, "blocked")
        # Event Log and Results
        Event = self.env["mkt.event"]
        self.assertEqual(
            Event.search_count(
                [("campaign_id", "=", campaign.id), ("event_type", "=", "complained")]
            ),
            1,
        )
        blocked = Event.search([("campaign_id", "=", campaign.id), ("event_type", "=", "blocked")])
        self.assertEqual(blocked.detail, "554 blocked by policy")
        bounced = Event.search([("trace_id", "=", bob.id), ("event_type", "=", "bounced")])
        self.assertEqual(bounced.detail, "550 5.1.1 user unknown")
        campaign.invalidate_recordset()
        self.assertEqual(
            (
                campaign.complained_count,
                campaign.blocked_count,
                campaign.delivered_count,
                campaign.bounced_count,
            ),
            (1, 1, 1, 1),
        )
