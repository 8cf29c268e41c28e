from odoo.exceptions import AccessError
from odoo.tests import tagged, users

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestCampaignReport(MktCampaignCommon):
    """Marketing > Reporting > Campaign Statistics: the queue counted by
    campaign, step, channel and state, test participants excluded, opened
    from the campaign's Statistics button."""

    def test_report_rows(self):
        self.maxDiff = None
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "sms",
                    {
                        "parent": "welcome",
                        "activity_type": "sms",
                        "interval_number": 1,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        campaign.action_start()
        self._run_queue()
        welcome = steps["welcome"]
        self._event(welcome, self.alice, "open")
        self._event(welcome, self.bob, "click")
        self._event(welcome, self.carol, "bounce")

        Report = self.env["mkt.campaign.report"]
        groups = Report._read_group(
            [("campaign_id", "=", campaign.id)],
            ["activity_id", "activity_type", "state"],
            [
                "trace_count:sum",
                "sent_count:sum",
                "opened_count:sum",
                "clicked_count:sum",
                "bounced_count:sum",
            ],
        )
        rows = {
            (activity.name, channel, state): (count, sent, opened, clicked, bounced)
            for activity, channel, state, count, sent, opened, clicked, bounced in groups
        }
        self.assertEqual(
            rows,
            {
                # Alice, Bob, Alice Again, Carol got it; Dan has no address;
                # a click marks the mail opened too
                ("welcome", "email", "processed"): (4, 4, 2, 1, 1),
                ("welcome", "email", "rejected"): (1, 0, 0, 0, 0),
                # the SMS waits a day for those who received the e-mail, but
                # Carol's bounced: hers is canceled
                ("sms", "sms", "scheduled"): (3, 0, 0, 0, 0),
                ("sms", "sms", "canceled"): (1, 0, 0, 0, 0),
            },
        )
        # the campaign's figures are the report's
        campaign.invalidate_recordset()
        self.assertEqual(
            (
                campaign.sent_email_count,
                campaign.rejected_count,
                campaign.pending_count,
                campaign.opened_count,
                campaign.clicked_count,
                campaign.bounced_count,
            ),
            (4, 1, 3, 2, 1, 1),
        )

        # a test run adds no row
        test_campaign, _steps = self._create_campaign([("welcome", {})], mode="test_realtime")
        test_campaign.action_start()
        self._run_queue()
        self.assertFalse(Report.search([("campaign_id", "=", test_campaign.id)]))
        self.assertTrue(
            self.env["mkt.trace"].search_count([("campaign_id", "=", test_campaign.id)]),
            "the test run did queue its steps",
        )

        # the Statistics button opens the campaign's rows
        action = campaign.action_view_statistics()
        self.assertEqual(action["res_model"], "mkt.campaign.report")
        self.assertEqual(Report.search(action["domain"]).campaign_id, campaign)

    @users("mkt_user", "mkt_internal")
    def test_report_access(self):
        """Campaign users read the statistics; other employees do not."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.action_start()
        self.env.flush_all()
        Report = self.env["mkt.campaign.report"]
        if self.env.user == self.user_mkt_user:
            self.assertEqual(Report.search([("campaign_id", "=", campaign.id)]).trace_count, 5)
        else:
            with self.assertRaises(AccessError):
                Report.search([("campaign_id", "=", campaign.id)])
