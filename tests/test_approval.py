from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestApproval(MktCampaignCommon):
    """Submit → approve → launch, with the setting "Campaigns need approval";
    without it, a campaign launches from draft as before."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.campaign, cls.steps = cls._create_campaign([("welcome", {})])
        cls.activity_type = cls.env.ref("mkt_campaign.mail_activity_type_mkt_campaign_approval")

    def _require_approval(self, value=True):
        self.env["ir.config_parameter"].sudo().set_param(
            "mkt_campaign.approval_required", value and "True" or ""
        )

    def _approval_activities(self, campaign):
        return (
            self.env["mail.activity"]
            .sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("res_model", "=", "mkt.campaign"),
                    ("res_id", "=", campaign.id),
                    ("activity_type_id", "=", self.activity_type.id),
                ]
            )
        )

    def test_without_setting_nothing_changes(self):
        self._require_approval(False)
        campaign = self.campaign.with_user(self.user_mkt_user)
        self.assertFalse(campaign.approval_required)
        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        with self.assertRaises(UserError):
            self.campaign.copy().with_user(self.user_mkt_user).action_submit()

    @users("mkt_user")
    def test_submit_approve_launch(self):
        self._require_approval()
        campaign = self.campaign.with_user(self.env.user)
        self.assertTrue(campaign.approval_required)
        # not approved: no launch
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()
        self.assertEqual(campaign.state, "draft")

        campaign.action_submit()
        self.assertEqual(campaign.state, "pending")
        activities = self._approval_activities(campaign)
        self.assertIn(
            self.user_mkt_manager,
            activities.user_id,
            "every manager gets an activity to review the campaign",
        )
        self.assertNotIn(self.user_mkt_user, activities.user_id)
        self.assertIn(
            "Submitted for approval by Ursula Campaign User", campaign.message_ids[0].body
        )
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()

        # the manager approves
        campaign.with_user(self.user_mkt_manager).action_approve()
        self.assertEqual(campaign.state, "approved")
        self.assertEqual(campaign.approved_by_id, self.user_mkt_manager)
        self.assertFalse(
            self._approval_activities(campaign).filtered("active"), "the review activities are done"
        )
        self.assertIn("approved by Manfred Campaign Manager", campaign.message_ids[0].body)

        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.participant_count, 5)

        # stopped: a new launch needs a new approval
        campaign.action_stop()
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()
        campaign.action_submit()
        self.assertEqual(campaign.state, "pending")

    @users("mkt_manager")
    def test_change_after_approval(self):
        """The approval is given to the campaign as it is: a change of its
        audience or of a step sends it back to draft; its budget does not."""
        self._require_approval()
        campaign = self.campaign.with_user(self.env.user)
        campaign.with_user(self.user_mkt_user).action_submit()
        campaign.action_approve()
        campaign.budget = 500.0
        self.assertEqual(campaign.state, "approved", "a budget is no content")
        campaign.domain = "[('email', '!=', False)]"
        self.assertEqual(campaign.state, "draft")
        self.assertFalse(campaign.approved_by_id)
        self.assertIn("after its approval", campaign.message_ids[0].body)
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()

        campaign.with_user(self.user_mkt_user).action_submit()
        campaign.action_approve()
        campaign.activity_ids.with_user(self.env.user).write({"subject": "Changed"})
        self.assertEqual(campaign.state, "draft")

        campaign.with_user(self.user_mkt_user).action_submit()
        campaign.action_approve()
        campaign.action_start()
        self.assertEqual(campaign.state, "running", "the launch itself changes nothing")

    @users("mkt_manager")
    def test_refuse_with_reason(self):
        self._require_approval()
        campaign = self.campaign.with_user(self.env.user)
        campaign.with_user(self.user_mkt_user).action_submit()
        wizard = self.env["mkt.campaign.refuse"].create(
            {
                "campaign_id": campaign.id,
                "reason": "The offer ends before the start date.",
            }
        )
        wizard.action_refuse()
        self.assertEqual(campaign.state, "draft")
        body = campaign.message_ids[0].body
        self.assertIn("refused by Manfred Campaign Manager", body)
        self.assertIn("The offer ends before the start date.", body)
        self.assertEqual(
            campaign.message_ids[0].partner_ids,
            campaign.user_id.partner_id,
            "the responsible is notified",
        )
        self.assertFalse(self._approval_activities(campaign).filtered("active"))
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()
        with self.assertRaisesRegex(UserError, "not waiting for approval"):
            campaign.action_approve()

    @users("mkt_user")
    def test_test_mode_needs_no_approval(self):
        """A rehearsal sends nothing: it may run before the approval."""
        self._require_approval()
        campaign = self.campaign.sudo().copy({"mode": "test"}).with_user(self.env.user)
        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.test_participant_count, 5)

    def test_engine_launch_without_approval(self):
        """A POS user's one-off message (a campaign launched by the engine) is
        not held for approval."""
        self._require_approval()
        campaign = self.env["mkt.campaign"]._send_now(
            "One-off",
            self.alice,
            {"name": "One-off", "activity_type": "sms", "body_plaintext": "Hello"},
        )
        self.assertEqual(campaign.state, "running")

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_user_cannot_approve(self):
        """As the attacker: a campaign user approves their own campaign, forges
        its state or its approval: refused, nothing changes."""
        self._require_approval()
        groups = self.env.user.group_ids
        campaign = self.campaign.with_user(self.env.user)
        campaign.action_submit()
        with self.assertRaisesRegex(AccessError, "Only marketing campaign managers"):
            campaign.action_approve()
        with self.assertRaisesRegex(AccessError, "Only marketing campaign managers"):
            campaign._action_refuse("no")
        with self.assertRaises(AccessError):
            self.env["mkt.campaign.refuse"].create({"campaign_id": campaign.id, "reason": "no"})
        with self.assertRaises(AccessError):
            campaign.write({"state": "approved"})
        with self.assertRaises(AccessError):
            campaign.write({"approved_by_id": self.env.user.id})
        self.env.invalidate_all()
        self.assertEqual(campaign.state, "pending")
        self.assertFalse(campaign.approved_by_id)
        with self.assertRaisesRegex(UserError, "needs approval"):
            campaign.action_start()
        self.assertEqual(campaign.state, "pending")
        self.assertEqual(self.env.user.group_ids, groups)

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_cannot_submit(self):
        self._require_approval()
        campaign = self.campaign.with_user(self.env.user)
        with self.assertRaises(AccessError):
            campaign.action_submit()
        self.assertEqual(self.campaign.state, "draft")
