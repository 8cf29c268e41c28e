from odoo.exceptions import UserError
from odoo.tests import freeze_time, tagged, users

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWorkflowTree(MktCampaignCommon):
    """What the Workflow tab's cards and the campaign dashboard show: each
    step's trigger in words, its figures from a few grouped queries (test
    participants never count) and the queue rows behind a figure."""

    def _sent_campaign(self):
        """Welcome e-mail sent at T0 to the four contacts with an address (Dan
        is rejected), Alice opened it; an 'opened' and a 'not opened' branch."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("thanks", {"parent": "welcome", "trigger_type": "email_open"}),
                (
                    "reminder",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 2,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        self._event(steps["welcome"], self.alice, "open", when=T0)
        return campaign, steps

    def _add_test_row(self, campaign, activity, state="processed"):
        """A test participant's row: tests never count in the figures."""
        participant = (
            self.env["mkt.participant"]
            .sudo()
            .create(
                {
                    "campaign_id": campaign.id,
                    "res_id": self.outsider.id,
                    "is_test": True,
                }
            )
        )
        return (
            self.env["mkt.trace"]
            .sudo()
            .create(
                {
                    "participant_id": participant.id,
                    "activity_id": activity.id,
                    "campaign_id": campaign.id,
                    "res_id": self.outsider.id,
                    "is_test": True,
                    "state": state,
                    "processed_date": T0,
                    "open_datetime": T0,
                }
            )
        )

    # ------------------------------------------------------------------
    # Trigger in words
    # ------------------------------------------------------------------

    def test_trigger_sentence(self):
        """Each card says when its step runs, in one sentence."""
        _campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "reminder",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 2,
                        "interval_type": "days",
                    },
                ),
                ("thanks", {"parent": "welcome", "trigger_type": "email_click"}),
                ("later", {"parent": "welcome", "interval_number": 1, "interval_type": "weeks"}),
            ]
        )
        self.assertEqual(steps["welcome"].trigger_description, "At campaign start")
        self.assertEqual(
            steps["reminder"].trigger_description, "2 days after the parent e-mail was not opened"
        )
        self.assertEqual(
            steps["thanks"].trigger_description, "As soon as the parent e-mail is clicked"
        )
        self.assertEqual(steps["later"].trigger_description, "1 week after the parent step")
        steps["later"].interval_number = 3
        self.assertEqual(steps["later"].trigger_description, "3 weeks after the parent step")

    # ------------------------------------------------------------------
    # Figures
    # ------------------------------------------------------------------

    @users("mkt_user")
    def test_figures(self):
        """Scheduled, processed, rejected, failed and the e-mail rates of each
        step, as the queue holds them; test participants are left out."""
        campaign, steps = self._sent_campaign()
        self._add_test_row(campaign.sudo(), steps["welcome"])
        self._add_test_row(campaign.sudo(), steps["reminder"], state="scheduled")
        with freeze_time(T0):
            figures = campaign.with_user(self.env.user).get_workflow_figures()
        welcome = figures["activities"][steps["welcome"].id]
        self.assertEqual(
            {
                key: welcome[key]
                for key in ("scheduled", "processed", "rejected", "failed", "opened", "clicked")
            },
            {"scheduled": 0, "processed": 4, "rejected": 1, "failed": 0, "opened": 1, "clicked": 0},
        )
        self.assertEqual(
            welcome["rates"], {"opened": 25.0, "clicked": 0.0, "replied": 0.0, "bounced": 0.0}
        )
        # the graph of the last 15 days: everything happened today (T0)
        self.assertEqual(len(welcome["graph"]["days"]), 15)
        self.assertEqual(welcome["graph"]["days"][-1], "2026-03-02")
        self.assertEqual(welcome["graph"]["processed"], [0] * 14 + [4])
        self.assertEqual(welcome["graph"]["rejected"], [0] * 14 + [1])
        # Alice's "opened" branch is due, the other three wait for 2 days
        self.assertEqual(figures["activities"][steps["thanks"].id]["scheduled"], 1)
        self.assertEqual(figures["activities"][steps["reminder"].id]["scheduled"], 3)
        self.assertTrue(figures["running"])
        # a child of an e-mail may wait for an open, a click, a reply, a bounce
        self.assertIn("email_not_open", figures["triggers"]["email"])
        self.assertIn("sms_click", figures["triggers"]["sms"])
        self.assertNotIn("email_open", figures["triggers"].get("server_action", []))

        # a figure opens its rows of the queue
        action = campaign.action_view_workflow_traces(steps["welcome"].id, "opened")
        self.assertEqual(action["display_name"], "welcome")
        opened = self.env["mkt.trace"].search(action["domain"])
        self.assertEqual(opened.mapped("record_name"), ["Alice Audience"])
        action = campaign.action_view_workflow_traces(steps["welcome"].id, "rejected")
        self.assertEqual(
            self.env["mkt.trace"].search(action["domain"]).mapped("record_name"), ["Dan No-Mail"]
        )

    def test_figures_grouped_queries(self):
        """The figures of a campaign are read with the same few queries for 3
        steps as for 30: never one per card."""
        campaign, steps = self._sent_campaign()
        campaign.invalidate_recordset()
        with self.assertQueryCount(5):
            campaign.get_workflow_figures()
        parent = steps["welcome"]
        for index in range(27):
            parent = self._add_step(campaign, name=f"Step {index}", parent=parent)
        self.assertEqual(len(campaign.activity_ids), 30)
        self.env.invalidate_all()
        with self.assertQueryCount(5):
            figures = campaign.get_workflow_figures()
        self.assertEqual(len(figures["activities"]), 30)

    def test_figures_unsaved_campaign(self):
        """A new campaign (not saved yet) gets the triggers without figures."""
        figures = self.env["mkt.campaign"].get_workflow_figures()
        self.assertEqual(figures["activities"], {})
        self.assertIn("whatsapp_read", figures["triggers"]["whatsapp"])

    def test_figure_of_another_campaign(self):
        """A figure opens only the rows of a step of that campaign."""
        campaign, steps = self._sent_campaign()
        other, _steps = self._create_campaign([("other", {})], name="Other")
        with self.assertRaises(UserError):
            other.action_view_workflow_traces(steps["welcome"].id, "processed")
        with self.assertRaises(UserError):
            campaign.action_view_workflow_traces(steps["welcome"].id, "state desc")

    # ------------------------------------------------------------------
    # Dashboard
    # ------------------------------------------------------------------

    def test_dashboard_graph(self):
        """A campaign card's graph: steps processed and rejected per day, the
        test participants left out."""
        campaign, steps = self._sent_campaign()
        self._add_test_row(campaign, steps["welcome"])
        with freeze_time(T0):
            campaign.invalidate_recordset(["dashboard_graph"])
            graph = campaign.dashboard_graph
        self.assertEqual(graph["processed"], [0] * 14 + [4])
        self.assertEqual(graph["rejected"], [0] * 14 + [1])

    @users("mkt_manager")
    def test_template_cards(self):
        """With no campaign, the dashboard shows the six templates; a click
        creates the draft and opens it."""
        Template = self.env["mkt.campaign.template"]
        cards = Template.get_template_cards()
        self.assertEqual(len(cards), 6)
        self.assertEqual(cards[0]["name"], "Tag Hot Contacts")
        self.assertTrue(all(card["description"] for card in cards))
        action = Template.action_create_from_template("welcome_flow")
        campaign = self.env["mkt.campaign"].browse(action["res_id"])
        self.assertEqual((campaign.name, campaign.state), ("Welcome Flow", "draft"))
        self.assertTrue(campaign.activity_ids)

    @users("mkt_user")
    def test_template_cards_user(self):
        """A campaign user, who may not create campaigns, gets no template card."""
        self.assertEqual(self.env["mkt.campaign.template"].get_template_cards(), [])
