from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestExit(MktCampaignCommon):
    """Exit conditions: participants whose record meets the campaign's filter
    "participants leave when…" leave it, their pending steps canceled with
    the reason; checked when steps come due and by the sync cron."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.left_tag = cls.env["res.partner.category"].create({"name": "Unsubscribed"})
        cls.exit_domain = repr([("category_id", "in", cls.left_tag.ids)])

    def _campaign(self, **values):
        return self._create_campaign(
            [
                ("welcome", {}),
                ("reminder", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ],
            exit_domain=self.exit_domain,
            **values,
        )

    def test_exit_when_steps_come_due(self):
        campaign, steps = self._campaign()
        self._launch(campaign)
        self.assertEqual(campaign.participant_count, 5)
        # Bob unsubscribes before the first e-mail leaves
        self.bob.category_id |= self.left_tag
        self._run_queue(when=T0)
        self.assertEqual(self._trace_states(steps["welcome"])[self.bob], "canceled")
        bob_trace = self._traces(steps["welcome"], self.bob)
        self.assertIn("exit condition", bob_trace.error_message)
        bob = campaign.participant_ids.filtered(lambda p: p.res_id == self.bob.id)
        self.assertEqual(bob.state, "left")
        self.assertTrue(bob.end_date)
        self.assertEqual(self._trace_states(steps["welcome"])[self.alice], "processed")
        self.assertFalse(self._traces(steps["reminder"], self.bob), "nothing follows")
        self.assertEqual(campaign.left_count, 1)

        # Carol leaves while her reminder waits: it is canceled when it comes due
        self.carol.category_id |= self.left_tag
        self._run_queue(when=T0.replace(day=T0.day + 2))
        self.assertEqual(self._trace_states(steps["reminder"])[self.carol], "canceled")
        self.assertEqual(self._trace_states(steps["reminder"])[self.alice], "processed")
        self.assertEqual(campaign.left_count, 2)

    def test_exit_by_sync_cron(self):
        # a frozen audience (no enrolment by the sync): people still leave
        campaign, steps = self._campaign(auto_entry=False)
        self._launch(campaign)
        self._run_queue(when=T0)
        self.alice.category_id |= self.left_tag
        self._run_sync()
        alice = campaign.participant_ids.filtered(lambda p: p.res_id == self.alice.id)
        self.assertEqual(alice.state, "left")
        reminder = self._traces(steps["reminder"], self.alice)
        self.assertEqual(reminder.state, "canceled")
        self.assertIn("exit condition", reminder.error_message)
        self.assertEqual(self._traces(steps["reminder"], self.bob).state, "scheduled")
        self.assertEqual(campaign.left_count, 1)
        # processed steps stay processed
        self.assertEqual(self._traces(steps["welcome"], self.alice).state, "processed")

    def test_matching_records_not_enrolled(self):
        self.dan.category_id |= self.left_tag
        campaign, _steps = self._campaign()
        self.assertEqual(campaign.record_count, 4)
        self._launch(campaign)
        self.assertNotIn(self.dan.id, campaign.participant_ids.mapped("res_id"))

    def test_exit_filter_is_literal(self):
        """As everywhere: plain values only, nothing evaluated with a record."""
        campaign, _steps = self._campaign()
        for bad in ("[('id', '=', user.id)]", "[('name', '=', env.user.name)]", "oops"):
            with self.assertRaises(ValidationError):
                campaign.exit_domain = bad
        campaign.exit_domain = "[('create_date', '<', context_today())]"
        campaign.exit_domain = "[]"
        self.assertFalse(campaign._has_exit_domain(), "an empty filter: nobody leaves")

    def test_exit_with_responsible_rights(self):
        """The exit condition sees what the responsible may read: a company
        restricted contact the responsible cannot read does not leave by a
        condition they cannot see."""
        other_company = self.env["res.company"].create({"name": "Other Co"})
        campaign, steps = self._campaign(user_id=self.user_mkt_manager.id)
        self._launch(campaign)
        # Bob now belongs to a company the responsible has no access to, and
        # meets the exit condition: the responsible cannot see it
        self.bob.write({"company_id": other_company.id, "category_id": [(4, self.left_tag.id)]})
        self._run_sync()
        bob = campaign.participant_ids.filtered(lambda p: p.res_id == self.bob.id)
        self.assertEqual(bob.state, "running")

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_user_cannot_set_exit(self):
        campaign, _steps = self._campaign()
        groups = self.env.user.group_ids
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user).write({"exit_domain": "[]"})
        self.env.invalidate_all()
        self.assertEqual(campaign.exit_domain, self.exit_domain)
        self.assertEqual(self.env.user.group_ids, groups)
