from datetime import timedelta

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, freeze_time, tagged, users
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon

D = timedelta(days=1)
H = timedelta(hours=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestSendNow(MktCampaignCommon):
    """Send Now from the queue, Message Participants from the participants:
    manual sending beside the workflow, through the queue and its rules."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mail_domain = repr([("category_id", "in", cls.tag.ids), ("email", "!=", False)])
        Params = cls.env["ir.config_parameter"].sudo()
        for key in ("cap_all", "cap_email", "cap_sms"):
            Params.set_param(f"mkt_campaign.{key}", "0")
        Params.set_param("mkt_campaign.quiet_hours", False)

    def _campaign(
        self, steps=(("welcome", {"interval_number": 2, "interval_type": "days"}),), **values
    ):
        campaign, activities = self._create_campaign(list(steps), domain=self.mail_domain, **values)
        self._launch(campaign)
        return campaign, activities

    def _send_now(self, traces, when=T0 + H):
        with freeze_time(when):
            action = traces.action_send_now()
        self.env.invalidate_all()
        return action

    # ------------------------------------------------------------------
    # Send Now
    # ------------------------------------------------------------------

    def test_send_now_respects_consent(self):
        self.alice.mkt_optin_date = T0 - D
        _campaign, steps = self._campaign(require_optin=True)
        welcome = steps["welcome"]
        chosen = self._traces(welcome, self.alice) | self._traces(welcome, self.bob)
        action = self._send_now(chosen)
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(set(chosen.mapped("schedule_date")), {T0 + H})
        self._run_queue(T0 + H)
        self.assertEqual(self._traces(welcome, self.alice).state, "processed")
        bob = self._traces(welcome, self.bob)
        self.assertEqual(bob.state, "rejected", "no confirmed opt-in: not sent, even now")
        self.assertIn("opt-in", bob.error_message)
        self.assertEqual(
            self._traces(welcome, self.carol).state,
            "scheduled",
            "steps not chosen wait for their date",
        )
        self.assertEqual(len(self._mails), 1)

    def test_send_now_respects_caps(self):
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.cap_email", "1")
        _campaign, steps = self._campaign(
            steps=[
                ("welcome", {"interval_number": 2, "interval_type": "days"}),
                ("promo", {"interval_number": 3, "interval_type": "days"}),
            ]
        )
        chosen = self._traces(steps["welcome"], self.bob) | self._traces(steps["promo"], self.bob)
        self._send_now(chosen)
        self._run_queue(T0 + H)
        self.assertEqual(sorted(chosen.mapped("state")), ["processed", "scheduled"])
        waiting = chosen.filtered(lambda t: t.state == "scheduled")
        self.assertIn("frequency cap", waiting.error_message)
        self.assertGreater(waiting.schedule_date, T0 + H)

    def test_send_now_manual_mode_confirms(self):
        _campaign, steps = self._campaign(mode="manual")
        trace = self._traces(steps["welcome"], self.carol)
        self._send_now(trace)
        self.assertTrue(trace.is_confirmed)
        self._run_queue(T0 + H)
        self.assertEqual(trace.state, "processed")

    def test_send_now_refused(self):
        _campaign, steps = self._campaign()
        self._run_queue(T0 + 2 * D)
        with self.assertRaises(UserError):
            self._send_now(steps["welcome"].trace_ids, when=T0 + 2 * D)
        campaign2, steps2 = self._campaign()
        campaign2.action_pause()
        with self.assertRaises(UserError):
            self._send_now(steps2["welcome"].trace_ids)

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_cannot_send_now(self):
        _campaign, steps = self._campaign()
        traces = steps["welcome"].trace_ids
        with self.assertRaises(AccessError):
            traces.with_user(self.env.user).action_send_now()
        self.assertEqual(set(traces.mapped("schedule_date")), {T0 + 2 * D})

    # ------------------------------------------------------------------
    # Message Participants
    # ------------------------------------------------------------------

    def _message(self, participants, **values):
        action = participants.action_message_participants()
        form = Form(self.env[action["res_model"]].with_context(**action["context"]))
        form.subject = values.get("subject", "A gift for {{ object.name }}")
        form.body_html = values.get("body_html", '<p>Your gift, <t t-out="object.name"/></p>')
        wizard = form.save()
        with freeze_time(T0 + H):
            return wizard.action_send()

    @users("mkt_user")
    def test_message_participants_tracked(self):
        campaign, _steps = self._campaign()
        campaign = campaign.with_user(self.env.user)
        chosen = campaign.participant_ids.filtered(
            lambda p: p.res_id in (self.alice | self.bob).ids
        )
        self._message(chosen)
        one_off = campaign.one_off_activity_ids
        self.assertEqual(len(one_off), 1)
        self.assertTrue(one_off.is_one_off)
        self.assertNotIn(one_off, campaign.activity_ids, "not a step of the workflow")
        self.assertEqual(
            sorted(one_off.trace_ids.mapped("res_id")), sorted((self.alice | self.bob).ids)
        )
        self.assertIn("one-off message", campaign.message_ids[0].body)
        self._run_queue(T0 + H)
        self.assertEqual(set(one_off.sudo().trace_ids.mapped("state")), {"processed"})
        self.assertEqual(
            sorted(to for mail in self._mails for to in mail["email_to"]),
            sorted([self.alice.email_formatted, self.bob.email_formatted]),
        )
        self.assertIn("A gift for Alice Audience", [m["subject"] for m in self._mails])
        # a newcomer never gets it
        self._new_contact()
        self._run_sync(T0 + 2 * H)
        self.assertEqual(len(one_off.sudo().trace_ids), 2)
        self.assertEqual(campaign.sudo().participant_count, 5)

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.mail.models.mail_render_mixin")
    def test_message_content_checked_with_user_rights(self):
        """With Email Marketing's restriction on, a campaign user who is no
        template editor cannot smuggle code into a one-off message."""
        self.env["ir.config_parameter"].sudo().set_param("mail.restrict.template.rendering", True)
        campaign, _steps = self._campaign()
        groups = self.env.user.group_ids
        participants = campaign.with_user(self.env.user).participant_ids[:1]
        with self.assertRaises(AccessError):
            self._message(participants, subject="{{ object.env['res.users'].sudo().search([]) }}")
        with self.assertRaises(AccessError):
            self._message(
                participants,
                body_html=(
                    "<p t-out=\"object.env['ir.config_parameter'].sudo().get_param('x')\"/>"
                ),
            )
        self.assertFalse(campaign.sudo().one_off_activity_ids)
        self.assertEqual(self.env.user.group_ids, groups)

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_cannot_message(self):
        campaign, _steps = self._campaign()
        with self.assertRaises(AccessError):
            campaign.participant_ids.with_user(self.env.user).action_message_participants()
        with self.assertRaises(AccessError):
            self.env["mkt.participant.message"].create(
                {
                    "campaign_id": campaign.id,
                    "subject": "x",
                    "body_html": "<p>x</p>",
                }
            ).action_send()
