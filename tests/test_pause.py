from datetime import timedelta

from odoo.exceptions import AccessError
from odoo.tests import freeze_time, tagged, users
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPause(MktCampaignCommon):
    def setUp(self):
        super().setUp()
        self.campaign, self.steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ]
        )
        self._launch(self.campaign)

    @users("mkt_user")
    def test_pause_holds_then_resume_sends(self):
        """Pause holds every pending step (nothing sent, nothing canceled);
        Resume sends what came due in between, then the rest when due."""
        campaign = self.campaign.with_user(self.env.user)
        campaign.action_pause()
        self.assertTrue(campaign.is_paused)
        self._run_queue(T0 + H)
        welcome = self.steps["welcome"].trace_ids
        self.assertEqual(set(welcome.mapped("state")), {"scheduled"}, "nothing runs while paused")
        self.assertFalse(self._new_mails)
        self.assertTrue(all(welcome.mapped("campaign_paused")))

        campaign.action_resume()
        self.assertFalse(campaign.is_paused)
        self._run_queue(T0 + 2 * H)
        self.assertEqual(
            {t.res_id: t.state for t in welcome},
            {**dict.fromkeys((self.partners - self.dan).ids, "processed"), self.dan.id: "rejected"},
        )
        self.assertEqual(len(self._new_mails), 4)
        follow_up = self.steps["follow_up"].trace_ids
        self.assertEqual(set(follow_up.mapped("state")), {"scheduled"})
        self._run_queue(T0 + D + 3 * H)
        self.assertEqual(set(follow_up.mapped("state")), {"processed"})
        self.assertEqual(len(self._new_mails), 4, "every contact got the follow-up once")

    def test_resume_skipping_missed_steps(self):
        """Resume, Skip Missed: what came due during the pause is canceled
        with the reason; steps due later run when due."""
        self._run_queue(T0 + H)  # the welcome e-mails go out
        self.campaign.action_pause()
        follow_up = self.steps["follow_up"].trace_ids
        self._run_queue(T0 + D + 2 * H)  # the follow-ups came due while paused
        self.assertEqual(set(follow_up.mapped("state")), {"scheduled"})
        late = self._add_step(
            self.campaign,
            name="late",
            parent=self.steps["welcome"],
            interval_number=3,
            interval_type="days",
        )
        with freeze_time(T0 + D + 2 * H):  # due three days from then
            self.steps["welcome"].trace_ids.filtered(
                lambda t: t.state == "processed"
            )._schedule_children(triggers=["after_parent"])
        with freeze_time(T0 + D + 3 * H):
            self.campaign.action_resume_skip()
        self.env.invalidate_all()
        self.assertEqual(set(follow_up.mapped("state")), {"canceled"})
        self.assertIn("paused", follow_up[0].error_message)
        self.assertEqual(
            set(late.trace_ids.mapped("state")), {"scheduled"}, "a step not due yet is kept"
        )
        self._run_queue(T0 + 5 * D)
        self.assertEqual(set(late.trace_ids.mapped("state")), {"processed"})

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_pause_rights(self):
        """Only campaign users pause; nobody forges the flag over RPC."""
        with self.assertRaises(AccessError):
            self.campaign.with_user(self.env.user).action_pause()
        with self.assertRaises(AccessError):
            self.campaign.with_user(self.user_mkt_manager).write({"is_paused": True})
        self.assertFalse(self.campaign.is_paused)
