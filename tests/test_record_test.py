from datetime import timedelta

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestRecordTest(MktCampaignCommon):
    """Launch a Test: one record, each step run for real from the test
    screen, the recipient's events simulated."""

    def setUp(self):
        super().setUp()
        self.campaign, self.steps = self._create_campaign(
            [
                ("welcome", {}),
                ("opened", {"parent": "welcome", "trigger_type": "email_open"}),
                (
                    "not_opened",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 2,
                        "interval_type": "days",
                    },
                ),
                ("clicked", {"parent": "welcome", "trigger_type": "email_click"}),
                (
                    "bounced",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_bounce",
                        "activity_type": "server_action",
                    },
                ),
            ]
        )

    def _launch_test(self, record):
        action = self.campaign.action_launch_test(record.id)
        participant = self.env["mkt.participant"].browse(action["res_id"])
        self.assertEqual(action["res_model"], "mkt.participant")
        return participant

    def _step(self, participant, key):
        return participant.trace_ids.filtered(lambda t: t.activity_id == self.steps[key])

    def test_run_step_sends_one_message_and_opened_branch(self):
        """▶ Run sends the step's e-mail to the tested record only, once; an
        open simulated from the screen queues the 'opened' branch and cancels
        the 'not opened' one, as a real open does."""
        participant = self._launch_test(self.bob)
        self.assertTrue(participant.is_test and participant.is_record_test)
        welcome = participant.trace_ids
        self.assertEqual(welcome.activity_id, self.steps["welcome"], "only the first step is due")
        self.assertFalse(self.campaign.participant_count, "a test is no participant")
        self.assertEqual(self.campaign.test_participant_count, 1)

        with self.mock_mail_gateway():
            welcome.action_run_test_step()
        self.assertEqual(welcome.state, "processed")
        self.assertEqual(len(self._mails), 1, "exactly one message")
        self.assertIn("bob@example.com", self._mails[0]["email_to"][0])
        self.assertIn("Bob Buyer", self._mails[0]["subject"])
        self.assertEqual(len(welcome.mailing_trace_ids), 1, "tracked as any campaign e-mail")
        self.assertEqual(self._step(participant, "not_opened").state, "scheduled")
        with self.assertRaises(UserError):
            welcome.action_run_test_step()  # never twice

        welcome.with_context(mkt_simulate_event="open").action_simulate()
        self.assertEqual(welcome.mailing_trace_ids.trace_status, "open")
        self.assertEqual(self._step(participant, "opened").state, "scheduled")
        self.assertEqual(self._step(participant, "not_opened").state, "canceled")
        self.assertFalse(self._step(participant, "clicked"))

        with self.mock_mail_gateway():
            self._step(participant, "opened").action_run_test_step()
        self.assertEqual(self._step(participant, "opened").state, "processed")
        self.assertEqual(len(self._mails), 1)
        self.assertIn("bob@example.com", self._mails[0]["email_to"][0])

        welcome.action_simulate("click")
        self.assertEqual(self._step(participant, "clicked").state, "scheduled")
        participant.action_stop_test()
        self.assertEqual(participant.state, "canceled")
        self.assertEqual(self._step(participant, "clicked").state, "canceled")
        # nobody else received anything
        self.assertFalse(
            self.env["mkt.trace"].search(
                [("campaign_id", "=", self.campaign.id), ("is_test", "=", False)]
            )
        )

    def test_bounce_branch(self):
        participant = self._launch_test(self.alice)
        welcome = participant.trace_ids
        with self.mock_mail_gateway():
            welcome.action_run_test_step()
        welcome.action_simulate("bounce")
        self.assertEqual(self._step(participant, "bounced").state, "scheduled")
        self.assertEqual(self._step(participant, "not_opened").state, "canceled")
        self._step(participant, "bounced").action_run_test_step()
        self.assertIn(self.other_tag, self.alice.category_id, "the server action ran on Alice")
        self.assertNotIn(self.other_tag, self.bob.category_id)

    def test_queue_leaves_test_steps_to_the_screen(self):
        """A running campaign's queue runs its participants' steps, never a
        test's: those wait for ▶ Run. Simulating on real steps is refused."""
        self._launch(self.campaign)
        participant = self._launch_test(self.outsider)
        self._run_queue(T0 + H)
        self.assertEqual(participant.trace_ids.state, "scheduled")
        real = self.steps["welcome"].trace_ids.filtered(lambda t: not t.is_test)
        self.assertEqual(len(real.filtered(lambda t: t.state == "processed")), 4)
        with self.assertRaises(UserError):
            real[:1].action_run_test_step()
        with self.assertRaises(UserError):
            real.filtered(lambda t: t.state == "processed")[:1].action_simulate("open")

    @users("mkt_internal")
    def test_internal_user_cannot_launch_test(self):
        with self.assertRaises(AccessError):
            self.campaign.with_user(self.env.user).action_launch_test(self.bob.id)

    def test_wizard(self):
        wizard = self.env["mkt.campaign.test"].create(
            {
                "campaign_id": self.campaign.id,
                "record_ref": f"res.partner,{self.carol.id}",
            }
        )
        action = wizard.action_launch()
        participant = self.env["mkt.participant"].browse(action["res_id"])
        self.assertEqual(participant.res_id, self.carol.id)
        self.assertEqual(participant.email, "carol@example.com")

    def test_audience_test_mode_simulates_engagement(self):
        """Test mode with a simulated engagement of 100%: every participant
        opens and clicks, so the event branches run; with 0%, the 'not
        opened' branch runs for everyone."""
        self.campaign.write({"mode": "test", "test_event_share": 100})
        self._launch(self.campaign)
        for key, state in (
            ("welcome", "processed"),
            ("opened", "processed"),
            ("clicked", "processed"),
            ("not_opened", "canceled"),
        ):
            self.assertEqual(
                set(self.steps[key].trace_ids.mapped("state")),
                {state},
                key,
            )
            self.assertEqual(len(self.steps[key].trace_ids), 5, key)
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("opened", {"parent": "welcome", "trigger_type": "email_open"}),
                ("not_opened", {"parent": "welcome", "trigger_type": "email_not_open"}),
            ],
            mode="test",
        )
        self._launch(campaign)
        self.assertFalse(steps["opened"].trace_ids)
        self.assertEqual(set(steps["not_opened"].trace_ids.mapped("state")), {"processed"})
