from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWorkflowTreeTour(HttpCase):
    def test_build_tree_from_cards(self):
        """A three-level workflow built from the cards of the Workflow tab: the
        parent of a new step is chosen from its card (the campaign is saved
        first when needed), its trigger preset from the card's menu."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Tour tree",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
            }
        )
        self.start_tour(
            f"/odoo/action-mkt_campaign.mkt_campaign_action/{campaign.id}",
            "mkt_campaign_tree",
            login="admin",
        )
        steps = {step.name: step for step in campaign.activity_ids}
        self.assertEqual(set(steps), {"Tree welcome", "Tree thanks", "Tree follow-up"})
        welcome, thanks, follow_up = (
            steps["Tree welcome"],
            steps["Tree thanks"],
            steps["Tree follow-up"],
        )
        self.assertEqual((welcome.parent_id, welcome.trigger_type), (welcome.browse(), "begin"))
        self.assertEqual((thanks.parent_id, thanks.trigger_type), (welcome, "email_open"))
        self.assertEqual((follow_up.parent_id, follow_up.trigger_type), (thanks, "after_parent"))
        self.assertEqual(follow_up.mailing_id.subject, "News for {{ object.name }}")

    def test_dashboard_templates(self):
        """Marketing > Campaigns with no campaign: the six templates as cards,
        one click creating the draft."""
        self.env["mkt.campaign"].with_context(active_test=False).search([]).unlink()
        self.start_tour(
            "/odoo/action-mkt_campaign.mkt_campaign_action",
            "mkt_campaign_dashboard_template",
            login="admin",
        )
        campaign = self.env["mkt.campaign"].search([])
        self.assertEqual((campaign.name, campaign.state), ("Prioritize Hot Leads", "draft"))
        self.assertTrue(campaign.activity_ids.child_ids)
