from datetime import timedelta

from odoo.exceptions import AccessError, UserError
from odoo.tests import freeze_time, tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestUpdate(MktCampaignCommon):
    """Update: steps added to a running workflow reach the participants
    already past their parent, from now, and nobody gets a step twice."""

    def setUp(self):
        super().setUp()
        self.campaign, self.steps = self._create_campaign([("welcome", {})])
        self._launch(self.campaign)
        self._run_queue(T0 + H)  # welcome sent to 4, Dan (no e-mail) rejected
        self.assertFalse(self.campaign.needs_update)

    def test_update_schedules_new_child_from_now(self):
        welcome = self.steps["welcome"]
        bonus = self._add_step(
            self.campaign, "bonus", parent=welcome, interval_number=1, interval_type="days"
        )
        opened = self._add_step(self.campaign, "opened", parent=welcome, trigger_type="email_open")
        self.assertTrue(self.campaign.needs_update, "the form offers Update")
        self._event(welcome, self.alice, "open", T0 + 2 * H)
        # a real open queues the new 'opened' step already: Update must not add another
        self.assertEqual(opened.trace_ids.res_id, self.alice.id)

        with freeze_time(T0 + 3 * H):
            action = self.campaign.action_update()
        self.env.invalidate_all()
        self.assertEqual(action["params"]["type"], "success")
        self.assertFalse(self.campaign.needs_update)
        self.assertEqual(
            set(bonus.trace_ids.mapped("res_id")),
            set((self.partners - self.dan).ids),
            "every participant past the welcome e-mail, not Dan whose step was rejected",
        )
        self.assertEqual(
            set(bonus.trace_ids.mapped("schedule_date")),
            {T0 + 3 * H + D},
            "scheduled from now, with the step's delay",
        )
        self.assertEqual(len(opened.trace_ids), 1)

        # idempotent: a second Update creates nothing
        count = len(self.env["mkt.trace"].search([("campaign_id", "=", self.campaign.id)]))
        with freeze_time(T0 + 4 * H):
            action = self.campaign.action_update()
        self.assertEqual(action["params"]["type"], "info")
        self.assertEqual(
            len(self.env["mkt.trace"].search([("campaign_id", "=", self.campaign.id)])), count
        )

        self._run_queue(T0 + 3 * H + D + H)
        self.assertEqual(set(bonus.trace_ids.mapped("state")), {"processed"})
        # the bonus for 4, and the "opened" step Alice's open queued; no welcome again
        self.assertEqual(len(self._mails), 5)
        self.assertEqual(set(welcome.trace_ids.mapped("state")), {"processed", "rejected"})
        self.assertEqual(len(welcome.trace_ids), 5)

    def test_update_reopens_completed_participants(self):
        participants = self.campaign.participant_ids
        self.assertEqual(set(participants.mapped("state")), {"completed"})
        self._add_step(self.campaign, "second", parent=self.steps["welcome"])
        with freeze_time(T0 + 2 * H):
            self.campaign.action_update()
        self.env.invalidate_all()
        self.assertEqual(
            {p.res_id: p.state for p in participants},
            {**dict.fromkeys((self.partners - self.dan).ids, "running"), self.dan.id: "completed"},
        )

    def test_update_rights(self):
        with self.assertRaises(AccessError):
            self.campaign.with_user(self.user_internal).action_update()
        with self.assertRaises(AccessError):
            self.campaign.with_user(self.user_mkt_manager).write({"needs_update": True})

    def test_update_follows_what_each_participant_did(self):
        """A new 'not opened' step reaches those who did not open the parent
        e-mail only; a draft campaign has nothing to update."""
        welcome = self.steps["welcome"]
        self._event(welcome, self.alice, "open", T0 + 2 * H)
        not_opened = self._add_step(
            self.campaign,
            "not opened",
            parent=welcome,
            trigger_type="email_not_open",
            interval_number=2,
            interval_type="days",
        )
        with freeze_time(T0 + 3 * H):
            self.campaign.action_update()
        self.env.invalidate_all()
        self.assertEqual(
            set(not_opened.trace_ids.mapped("res_id")),
            {self.bob.id, self.alice_dup.id, self.carol.id},
        )
        draft, _steps = self._create_campaign([("welcome", {})])
        with self.assertRaises(UserError):
            draft.action_update()
