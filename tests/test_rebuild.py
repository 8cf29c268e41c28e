from datetime import timedelta

from odoo.exceptions import AccessError, UserError
from odoo.tests import freeze_time, tagged, users
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon

D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestRebuildQueue(MktCampaignCommon):
    """Rebuild Queue: after the workflow of a running campaign changed, the
    pending steps follow it; processed steps are never sent again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the contacts with an e-mail: every welcome e-mail is processed
        cls.mail_domain = repr([("category_id", "in", cls.tag.ids), ("email", "!=", False)])

    def _campaign(self):
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("reminder", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ],
            domain=self.mail_domain,
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"scheduled"})
        return campaign, steps

    def _rebuild(self, campaign, requeue_failed=False, when=T0 + timedelta(hours=2)):
        with freeze_time(when):
            wizard = self.env["mkt.campaign.rebuild"].create(
                {
                    "campaign_id": campaign.id,
                    "requeue_failed": requeue_failed,
                }
            )
            wizard.action_rebuild()
        self.env.invalidate_all()

    def _sent_to(self):
        return sorted(to for mail in self._mails for to in mail["email_to"])

    def test_changed_delay_replanned_processed_kept(self):
        campaign, steps = self._campaign()
        self.assertFalse(campaign.queue_outdated)
        welcome_done = {t.id: t.processed_date for t in steps["welcome"].trace_ids}
        steps["reminder"].interval_number = 3
        self.assertTrue(campaign.queue_outdated, "Rebuild Queue is offered")
        self._rebuild(campaign)
        self.assertFalse(campaign.queue_outdated)
        for trace in steps["reminder"].trace_ids:
            self.assertEqual(trace.state, "scheduled")
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 3 * D)
        self.assertEqual(
            {t.id: t.processed_date for t in steps["welcome"].trace_ids},
            welcome_done,
            "processed steps are untouched",
        )
        self.assertIn("re-planned", campaign.message_ids[0].body)
        # nothing due at the old date; the welcome e-mail never goes again
        self._run_queue(T0 + 2 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"scheduled"})
        self.assertFalse(self._mails, "nothing is sent twice")
        self._run_queue(T0 + 3 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(len(self._mails), len(steps["reminder"].trace_ids))
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})
        for trace in steps["welcome"].trace_ids:
            self.assertEqual(len(trace.mailing_trace_ids), 1, "one welcome e-mail each")

    def test_added_and_moved_steps(self):
        campaign, steps = self._campaign()
        participants = campaign.participant_ids
        # a new follow-up of the welcome e-mail: queued under its processed rows
        gift = self._add_step(
            campaign, name="gift", parent=steps["welcome"], interval_number=2, interval_type="days"
        )
        # the reminder now follows the gift: its rows under the welcome are canceled
        steps["reminder"].parent_id = gift
        self._rebuild(campaign)
        self.assertEqual(len(gift.trace_ids), len(participants))
        for trace in gift.trace_ids:
            self.assertEqual(trace.parent_id.activity_id, steps["welcome"])
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 2 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"canceled"})
        self.assertIn("trigger or parent changed", steps["reminder"].trace_ids[0].error_message)
        # the gift runs, then the reminder follows it as the workflow now says
        self._run_queue(T0 + 2 * D)
        self.assertEqual(set(gift.trace_ids.mapped("state")), {"processed"})
        new_reminders = steps["reminder"].trace_ids.filtered(lambda t: t.state == "scheduled")
        self.assertEqual(new_reminders.parent_id, gift.trace_ids)
        # rebuilding again changes nothing: no duplicate, no re-send
        self._rebuild(campaign, when=T0 + 2 * D)
        self.assertEqual(len(gift.trace_ids), len(participants))
        self.assertIn("0 steps canceled, 0 re-planned, 0 added", campaign.message_ids[0].body)

    def test_new_first_step_and_completed_participants(self):
        """A first step added later reaches the participants, including those
        who had completed the workflow (who run again)."""
        campaign, _steps = self._create_campaign([("welcome", {})], domain=self.mail_domain)
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        survey = self._add_step(campaign, name="survey", interval_number=1, interval_type="days")
        self._rebuild(campaign)
        self.assertEqual(len(survey.trace_ids), len(campaign.participant_ids))
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"running"})
        for trace in survey.trace_ids:
            self.assertEqual(trace.schedule_date, trace.participant_id.enrolled_date + D)

    def test_deleted_step(self):
        """A deleted step's rows go with it; participants left with nothing
        to do complete."""
        campaign, steps = self._campaign()
        steps["reminder"].unlink()
        self.assertTrue(campaign.queue_outdated)
        self._rebuild(campaign)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})

    def test_failed_requeued_on_request(self):
        campaign, steps = self._campaign()
        self._run_queue(T0 + D)
        failed = steps["reminder"].trace_ids[:2]
        failed._set_state("failed", "SMTP down")
        self._rebuild(campaign)
        self.assertEqual(set(failed.mapped("state")), {"failed"}, "not without the option")
        self._rebuild(campaign, requeue_failed=True, when=T0 + 2 * D)
        self.assertEqual(set(failed.mapped("state")), {"scheduled"})
        self.assertEqual(set(failed.mapped("schedule_date")), {T0 + 2 * D})
        others = steps["reminder"].trace_ids - failed
        self.assertEqual(set(others.mapped("state")), {"processed"}, "processed ones stay")

    @users("mkt_user")
    def test_campaign_user_rebuilds(self):
        """Campaign users run campaigns: they rebuild the queue too (the
        manager changed the workflow), and the chatter names them."""
        campaign, steps = self._campaign()
        steps["reminder"].interval_number = 2
        campaign = campaign.with_user(self.env.user)
        self.assertTrue(campaign.queue_outdated)
        action = campaign.action_rebuild_queue()
        self.assertEqual(action["res_model"], "mkt.campaign.rebuild")
        self._rebuild(campaign)
        self.assertFalse(campaign.queue_outdated)
        for trace in steps["reminder"].sudo().trace_ids:
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 2 * D)
        note = campaign.sudo().message_ids[0]
        self.assertIn("Queue rebuilt by Ursula Campaign User", note.body)
        self.assertEqual(note.author_id, self.env.user.partner_id)

    def test_only_running_campaign(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        with self.assertRaises(UserError):
            campaign._rebuild_queue()

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_cannot_rebuild(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.sudo().action_start()
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user)._rebuild_queue()
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user).write({"queue_outdated": False})
