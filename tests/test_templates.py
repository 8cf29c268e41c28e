from odoo.tests import Form, tagged

from odoo.addons.mkt_campaign.wizard.mkt_campaign_template import TEMPLATES

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestCampaignTemplates(MktCampaignCommon):
    """Marketing > New from Template: the six campaigns to start from."""

    def _from_template(self, key):
        form = Form(self.env["mkt.campaign.template"].with_user(self.user_mkt_manager))
        form.template = key
        action = form.save().action_create()
        return self.env["mkt.campaign"].browse(action["res_id"])

    def test_every_template_is_launchable(self):
        """Each template gives a draft campaign whose workflow passes the launch
        checks (contents render, actions apply to the target)."""
        expected = {
            "tag_hot_contacts": (
                "res.partner",
                [("email", "begin"), ("server_action", "email_click")],
            ),
            "welcome_flow": (
                "mailing.contact",
                [("email", "begin"), ("server_action", "email_bounce")],
            ),
            "double_optin": ("mailing.contact", [("email", "begin")]),
            "commercial_prospection": (
                "crm.lead",
                [("email", "begin"), ("email", "email_open"), ("email", "email_not_open")],
            ),
            "schedule_calls": ("crm.lead", [("server_action", "begin")]),
            "prioritize_hot_leads": (
                "crm.lead",
                [("email", "begin"), ("server_action", "email_open")],
            ),
        }
        self.assertEqual(set(expected), {key for key, _label in TEMPLATES})
        # the audience is what the responsible user may read: lead campaigns
        # need a responsible with access to leads
        self.user_mkt_manager.group_ids |= self.env.ref("sales_team.group_sale_salesman_all_leads")
        for key, (model, steps) in expected.items():
            with self.subTest(template=key):
                campaign = self._from_template(key)
                self.assertEqual((campaign.state, campaign.model_name), ("draft", model))
                self.assertEqual(
                    [(a.activity_type, a.trigger_type) for a in campaign.activity_ids.sorted("id")],
                    steps,
                )
                campaign._check_launchable()

    def test_tag_hot_contacts_runs(self):
        """The hot-contact template tags the contacts who click its e-mail."""
        campaign = self._from_template("tag_hot_contacts")
        campaign.domain = self.audience_domain
        welcome, tag = campaign.activity_ids.sorted("id")
        self._launch(campaign)
        self._run_queue(T0)
        self._click_link(welcome, self.bob)
        self._run_queue()  # the click happened now: its step is due now
        hot = self.env["res.partner.category"].search([("name", "=", "Hot")])
        self.assertIn(hot, self.bob.category_id)
        self.assertNotIn(hot, self.alice.category_id)
        self.assertEqual(self._traces(tag, self.bob).state, "processed")
