from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "mkt_campaign")
class TestCampaignTour(HttpCase):
    def test_create_and_launch_campaign(self):
        """A marketing manager builds a one-step campaign in the Marketing app and
        launches it: the contacts matching the default filter are enrolled."""
        self.env["res.partner"].create([
            {"name": f"Tour contact {i}", "email": f"tour{i}@example.com"} for i in range(3)
        ])
        self.start_tour("/odoo", "mkt_campaign_create_and_launch", login="admin")
        campaign = self.env["mkt.campaign"].search([("name", "=", "Tour Spring Sale")])
        self.assertEqual(campaign.state, "running")
        self.assertEqual(len(campaign.activity_ids), 1)
        step = campaign.activity_ids
        self.assertEqual(step.mailing_id.subject, "Spring is here, {{ object.name }}")
        self.assertIn("Our spring sale starts today.", step.mailing_id.body_html)
        self.assertGreaterEqual(campaign.participant_count, 3)
        self.assertEqual(
            len(campaign.participant_ids.trace_ids), campaign.participant_count,
            "every participant has its first step queued",
        )

    def test_campaign_from_template(self):
        """A marketing manager starts from a template and sets the budget in the
        Results tab."""
        self.start_tour("/odoo", "mkt_campaign_from_template", login="admin")
        campaign = self.env["mkt.campaign"].search([("name", "=", "Prioritize Hot Leads")])
        self.assertEqual(len(campaign), 1)
        self.assertEqual((campaign.state, campaign.model_name), ("draft", "crm.lead"))
        self.assertEqual(campaign.budget, 250)
        self.assertEqual(len(campaign.activity_ids), 2)
