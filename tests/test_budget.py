from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestBudget(MktCampaignCommon):
    """A budget that binds: planned cost per step next to actual cost, unit
    costs for every channel, the responsible told at 80% and 100%, and the
    sending paused at 100% when the campaign asks for it."""

    def _budget_notes(self, campaign):
        return campaign.message_ids.filtered(lambda m: "budget" in (m.body or ""))

    def _campaign(self, **values):
        # 4 e-mails leave at the first step (Dan has no address)
        return self._create_campaign(
            [
                ("welcome", {"expected_count": 5}),
                ("reminder", {"parent": "welcome", "expected_count": 4}),
            ],
            cost_per_email=3.0,
            user_id=self.user_mkt_manager.id,
            **values,
        )

    @users("mkt_manager")
    def test_planned_and_actual_cost(self):
        campaign, steps = self._campaign(budget=1000.0)
        campaign = campaign.with_user(self.env.user)
        welcome = steps["welcome"].with_user(self.env.user)
        self.assertEqual(welcome.unit_cost, 3.0)
        self.assertEqual(welcome.planned_cost, 15.0)
        self.assertEqual(steps["reminder"].planned_cost, 12.0)
        self.assertEqual(campaign.planned_cost, 27.0)
        self.assertEqual(welcome.actual_cost, 0.0)
        campaign.write(
            {
                "cost_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Design",
                            "amount": 50.0,
                            "activity_id": welcome.id,
                        },
                    )
                ]
            }
        )
        campaign.action_start()
        self._run_queue()
        self.assertEqual(welcome.processed_count, 4)
        self.assertEqual(welcome.actual_cost, 4 * 3.0 + 50.0)
        self.assertEqual(steps["reminder"].actual_cost, 4 * 3.0)
        self.assertEqual(campaign.message_cost, 24.0)
        self.assertEqual(campaign.total_cost, 74.0)
        self.assertFalse(self._budget_notes(campaign), "2% of the budget: nobody is told")

    def test_unit_costs_every_channel(self):
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            cost_per_email=1.0,
            cost_per_sms=2.0,
            cost_per_whatsapp=5.0,
            cost_per_push=0.5,
        )
        push = self._add_step(
            campaign,
            "push",
            activity_type="push",
            push_title="Hi {{ object.name }}",
            push_body="Our sale",
            expected_count=10,
        )
        sms = self._add_step(campaign, "sms", activity_type="sms", expected_count=10)
        self.assertEqual(push.unit_cost, 0.5)
        self.assertEqual(push.planned_cost, 5.0)
        self.assertEqual(sms.planned_cost, 20.0)
        campaign.action_start()
        # messages sent on each channel (as the channels record them)
        push.trace_ids[:2]._set_state("processed")
        sms.trace_ids[:3]._set_state("processed")
        steps["welcome"].trace_ids[:1]._set_state("processed")
        self.env.invalidate_all()
        self.assertEqual(campaign.sent_push_count, 2)
        self.assertEqual(campaign.message_cost, 1.0 + 3 * 2.0 + 2 * 0.5)
        self.assertEqual(push.actual_cost, 1.0)

    def test_notified_at_80_and_100_once(self):
        # 4 e-mails × 3 = 12 of 15: 80%
        campaign, steps = self._campaign(budget=15.0)
        campaign.action_start()
        # the reminders wait a day: only the first e-mails leave now
        steps["reminder"].interval_number = 1
        steps["reminder"].interval_type = "days"
        self._run_queue()
        self.assertAlmostEqual(campaign.budget_used_rate, 80.0)
        notes = self._budget_notes(campaign)
        self.assertEqual(len(notes), 1)
        self.assertIn("80%", notes.body)
        self.assertIn(
            self.user_mkt_manager.partner_id, notes.partner_ids, "the responsible is notified"
        )
        campaign._check_budget()
        self.assertEqual(len(self._budget_notes(campaign)), 1, "told once")
        # a registered cost takes it over 100%: told once more, not paused
        campaign.write({"cost_ids": [(0, 0, {"name": "List", "amount": 5.0})]})
        notes = self._budget_notes(campaign)
        self.assertEqual(len(notes), 2)
        self.assertIn("reached its budget", notes[0].body)
        self.assertFalse(campaign.budget_paused)
        campaign._check_budget()
        self.assertEqual(len(self._budget_notes(campaign)), 2)

    def test_pause_at_100(self):
        # 4 e-mails × 3 = 12 of 10: the reminders must not leave
        campaign, steps = self._campaign(budget=10.0, budget_pause=True)
        campaign.action_start()
        self._run_queue()
        self.assertEqual(steps["welcome"].processed_count, 4)
        self.assertTrue(campaign.budget_paused)
        self.assertIn("paused", self._budget_notes(campaign)[0].body)
        reminders = steps["reminder"].trace_ids
        self.assertEqual(len(reminders), 4)
        self.assertEqual(set(reminders.mapped("state")), {"scheduled"})
        self._run_queue()
        self.assertEqual(
            set(reminders.mapped("state")),
            {"scheduled"},
            "the queue claims none of a paused campaign's steps",
        )
        self.assertEqual(self.env["mkt.trace"]._count_due(), 0)

        # a raised budget resumes the sending
        campaign.with_user(self.user_mkt_manager).budget = 100.0
        self.assertFalse(campaign.budget_paused)
        self._run_queue()
        self.assertEqual(set(reminders.mapped("state")), {"processed"})

    def test_pause_between_chunks(self):
        """The chunk that reaches the budget is the last one to leave."""
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.send_chunk_size", 2)
        campaign, steps = self._campaign(budget=5.0, budget_pause=True)
        campaign.action_start()
        self._run_queue()
        welcome = steps["welcome"]
        # Dan is rejected in his chunk; 2 e-mails (6 > 5) pause the rest
        self.assertEqual(welcome.processed_count, 2)
        self.assertTrue(campaign.budget_paused)
        waiting = welcome.trace_ids.filtered(lambda t: t.state == "scheduled")
        self.assertTrue(waiting)
        self.assertIn("paused", waiting[0].error_message)

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_user_cannot_unpause(self):
        """As the attacker: a campaign user resumes a paused campaign or
        raises its budget: refused, the campaign stays paused."""
        campaign, _steps = self._campaign(budget=10.0, budget_pause=True)
        campaign.action_start()
        self._run_queue()
        self.assertTrue(campaign.budget_paused)
        groups = self.env.user.group_ids
        mine = campaign.with_user(self.env.user)
        with self.assertRaises(AccessError):
            mine.write({"budget_paused": False})
        with self.assertRaises(AccessError):
            mine.write({"budget": 1000.0})
        with self.assertRaises(AccessError):
            mine.write({"budget_notified_100": False})
        self.env.invalidate_all()
        self.assertTrue(campaign.budget_paused)
        self.assertEqual(campaign.budget, 10.0)
        self.assertEqual(self.env.user.group_ids, groups)
