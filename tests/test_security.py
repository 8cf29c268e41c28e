from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import EMAIL_BODY, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestSecurity(MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.campaign, cls.steps = cls._create_campaign([("welcome", {})])

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_campaign_user(self):
        """A campaign user sees campaigns and their results, launches, stops
        and confirms them, but does not configure them."""
        campaign = self.campaign.with_user(self.env.user)
        self.assertEqual(self.env["mkt.campaign"].search([("id", "=", campaign.id)]), campaign)
        self.assertEqual(campaign.activity_ids.name, "welcome")

        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.participant_count, 5)
        self.assertEqual(len(self.env["mkt.trace"].search([("campaign_id", "=", campaign.id)])), 5)
        self.assertEqual(len(campaign.participant_ids), 5)
        traces = campaign.participant_ids.trace_ids
        traces[:1].action_cancel()
        self.assertEqual(traces[:1].state, "canceled")
        campaign.action_stop()
        self.assertEqual(campaign.state, "stopped")

        with self.assertRaises(AccessError):
            self.env["mkt.campaign"].create({"name": "Mine", "model_id": self.partner_model.id})
        with self.assertRaises(AccessError):
            campaign.write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            self.env["mkt.activity"].create({"campaign_id": campaign.id, "name": "Extra"})
        with self.assertRaises(AccessError):
            campaign.activity_ids.write({"interval_number": 3})
        with self.assertRaises(AccessError):
            traces.write({"state": "scheduled"})
        with self.assertRaises(AccessError):
            campaign.participant_ids.unlink()
        with self.assertRaises(AccessError):
            campaign.unlink()

    @users("mkt_manager")
    def test_campaign_manager(self):
        """A campaign manager configures, launches and deletes campaigns."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Manager's campaign",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        step = self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Hello",
                "subject": "Hello {{ object.name }}",
                "body_html": EMAIL_BODY,
            }
        )
        self.assertEqual(step.mailing_id.subject, "Hello {{ object.name }}")
        step.write({"interval_number": 1, "subject": "Hi {{ object.name }}"})
        self.assertEqual(step.mailing_id.subject, "Hi {{ object.name }}")
        campaign.write({"name": "Renamed", "mode": "manual"})
        campaign.action_start()
        self.assertEqual(campaign.participant_count, 5)
        campaign.action_stop()
        campaign.action_draft()
        campaign.unlink()
        self.assertFalse(campaign.exists())
        self.steps["welcome"].with_user(self.env.user).unlink()
        self.assertFalse(self.steps["welcome"].exists())

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user(self):
        """An employee without campaign rights sees nothing and runs nothing."""
        for model in ("mkt.campaign", "mkt.activity", "mkt.participant", "mkt.trace"):
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].search([])
        campaign = self.campaign.with_user(self.env.user)
        with self.assertRaises(AccessError):
            campaign.read(["name"])
        with self.assertRaisesRegex(AccessError, "Only marketing campaign users can run campaigns"):
            campaign.action_start()
        self.assertEqual(self.campaign.state, "draft")

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_multi_company(self):
        """Campaigns of a company the user has no access to are invisible."""
        foreign, foreign_steps = self._create_campaign(
            [("welcome", {})],
            name="Other company",
            company_id=self.company_2.id,
        )
        foreign.action_start()
        Campaign = self.env["mkt.campaign"]
        visible = Campaign.search([])
        self.assertIn(self.campaign, visible)
        self.assertNotIn(foreign, visible)
        self.assertFalse(self.env["mkt.trace"].search([("campaign_id", "=", foreign.id)]))
        self.assertFalse(self.env["mkt.activity"].search([("campaign_id", "=", foreign.id)]))
        with self.assertRaises(AccessError):
            foreign.with_user(self.env.user).action_stop()
        with self.assertRaises(AccessError):
            foreign_steps["welcome"].with_user(self.env.user).read(["name"])
