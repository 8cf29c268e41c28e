from datetime import timedelta

from odoo.tests import freeze_time, tagged, users

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestModes(MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.steps_spec = [
            ("welcome", {"interval_number": 2, "interval_type": "days"}),
            (
                "opened",
                {
                    "parent": "welcome",
                    "trigger_type": "email_open",
                    "activity_type": "server_action",
                },
            ),
            (
                "reminder",
                {
                    "parent": "welcome",
                    "trigger_type": "email_not_open",
                    "activity_type": "sms",
                    "interval_number": 3,
                    "interval_type": "days",
                },
            ),
            ("follow_up", {"parent": "welcome", "interval_number": 1, "interval_type": "weeks"}),
            ("tag", {"parent": "follow_up", "activity_type": "server_action"}),
        ]

    def _assert_nothing_executed(self, steps):
        mailings = (
            steps["welcome"].mailing_id
            | steps["reminder"].mailing_id
            | steps["follow_up"].mailing_id
        )
        self.assertFalse(
            self.env["mail.mail"].sudo().search([("mailing_id", "in", mailings.ids)]),
            "no e-mail is generated",
        )
        self.assertFalse(
            self.env["sms.sms"].sudo().search([("mailing_id", "in", mailings.ids)]),
            "no SMS is generated",
        )
        self.assertFalse(
            self.env["mailing.trace"].search([("mass_mailing_id", "in", mailings.ids)])
        )
        for partner in self.partners:
            self.assertNotIn(self.other_tag, partner.category_id, "no server action is run")
        for step in steps.values():
            self.assertEqual(
                (step.processed_count, step.scheduled_count, step.rejected_count),
                (0, 0, 0),
                "test runs are not counted in the step statistics",
            )

    def test_mode_test(self):
        """Test: the whole workflow runs at launch, delays ignored, executing
        no action; only the queue it would produce is recorded."""
        campaign, steps = self._create_campaign(self.steps_spec, mode="test")
        self._launch(campaign)
        self.assertTrue(campaign.is_test_mode)
        self.assertEqual((campaign.participant_count, campaign.test_participant_count), (0, 5))
        self.assertTrue(all(campaign.participant_ids.mapped("is_test")))
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        for key in ("welcome", "reminder", "follow_up", "tag"):
            traces = steps[key].trace_ids
            self.assertEqual(len(traces), 5, f"{key} for every participant")
            self.assertEqual(set(traces.mapped("state")), {"processed"})
            self.assertEqual(set(traces.mapped("is_test")), {True})
            self.assertEqual(set(traces.mapped("schedule_date")), {T0}, "delays are ignored")
        self.assertFalse(steps["opened"].trace_ids, "no message is sent, so nothing is opened")
        self.assertEqual(
            steps["tag"].trace_ids.parent_id.parent_id,
            steps["welcome"].trace_ids,
            "the queue keeps the path each participant took",
        )
        self._assert_nothing_executed(steps)

        # the synchronisation runs the workflow of new test participants too
        newcomer = self._new_contact()
        self._run_sync(T0 + H)
        self.assertEqual(self._traces(steps["tag"], newcomer).state, "processed")
        self._assert_nothing_executed(steps)

        # a test run does not keep the same records out of the real run
        campaign.action_stop()
        campaign.action_draft()
        campaign.mode = "normal"
        self._launch(campaign, T0 + D)
        self.assertEqual((campaign.participant_count, campaign.test_participant_count), (6, 6))
        self.assertEqual(steps["welcome"].scheduled_count, 6)

    def test_mode_test_realtime(self):
        """Test in real time: delays are respected, still no action is run."""
        campaign, steps = self._create_campaign(self.steps_spec, mode="test_realtime")
        self._launch(campaign)
        self.assertEqual(campaign.test_participant_count, 5)
        welcome = steps["welcome"].trace_ids
        self.assertEqual(set(welcome.mapped("schedule_date")), {T0 + 2 * D})
        self._run_queue(T0 + 2 * D - timedelta(minutes=1))
        self.assertEqual(set(welcome.mapped("state")), {"scheduled"})
        self._run_queue(T0 + 2 * D)
        self.assertEqual(
            set(welcome.mapped("state")), {"processed"}, "Dan is not rejected: nothing is sent"
        )
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("schedule_date")), {T0 + 5 * D})
        self.assertEqual(set(steps["follow_up"].trace_ids.mapped("schedule_date")), {T0 + 9 * D})
        self._run_queue(T0 + 5 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(steps["follow_up"].trace_ids.mapped("state")), {"scheduled"})
        self._run_queue(T0 + 9 * D)
        self.assertEqual(set(steps["tag"].trace_ids.mapped("state")), {"processed"})
        self._assert_nothing_executed(steps)

    @users("mkt_user")
    def test_mode_manual(self):
        """Manual confirmation: due steps wait for a campaign user's
        confirmation; confirming sends nothing in the user's request but wakes
        the queue, which runs confirmed due steps at once and confirmed steps
        not due yet when due."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ],
            mode="manual",
        )
        campaign = campaign.with_user(self.env.user)
        self._launch(campaign)
        self._run_queue(T0 + H)
        welcome = steps["welcome"].trace_ids.with_user(self.env.user)
        self.assertEqual(set(welcome.mapped("state")), {"scheduled"}, "nothing runs unconfirmed")
        self.assertEqual(steps["welcome"].scheduled_count, 5)

        # confirm one
        alice = welcome.filtered(lambda t: t.res_id == self.alice.id)
        cron = self.env.ref("mkt_campaign.ir_cron_execute_activities")
        with freeze_time(T0 + H), self.mock_mail_gateway():
            alice.action_confirm()
            self.assertFalse(self._new_mails, "nothing is sent inside the user's request")
        self.env.invalidate_all()
        self.assertTrue(alice.is_confirmed)
        self.assertEqual(alice.state, "scheduled")
        self.assertTrue(
            self.env["ir.cron.trigger"].sudo().search([("cron_id", "=", cron.id)]),
            "the queue is woken up",
        )
        self._run_queue(T0 + H)
        self.assertEqual(alice.state, "processed")
        self.assertEqual(len(self._new_mails), 1)
        self.assertEqual(self._new_mails.subject, "Spring sale for Alice Audience")
        self.assertEqual(set((welcome - alice).mapped("state")), {"scheduled"})

        # confirm in bulk (already processed ones are left alone)
        with freeze_time(T0 + 2 * H):
            welcome.action_confirm()
        self._run_queue(T0 + 2 * H)
        self.assertEqual(alice.processed_date, T0 + H)
        self.assertEqual(
            {t.res_id: t.state for t in welcome},
            {**dict.fromkeys((self.partners - self.dan).ids, "processed"), self.dan.id: "rejected"},
        )
        self.assertEqual(len(self._new_mails), 3)

        # children wait as well; confirming one before it is due lets it run when due
        follow_up = steps["follow_up"].trace_ids.with_user(self.env.user)
        self.assertEqual(len(follow_up), 4)
        bob = follow_up.filtered(lambda t: t.res_id == self.bob.id)
        with freeze_time(T0 + 3 * H):
            bob.action_confirm()
        self.assertEqual((bob.state, bob.is_confirmed), ("scheduled", True))
        self._run_queue(T0 + D + 2 * H)
        self.assertEqual(bob.state, "processed")
        self.assertEqual(set((follow_up - bob).mapped("state")), {"scheduled"})

    def test_mode_normal(self):
        """Normal: the scheduler runs due steps without anyone's intervention."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "tag",
                    {"parent": "welcome", "activity_type": "server_action", "interval_number": 1},
                ),
            ]
        )
        self._launch(campaign)
        cron = self.env.ref("mkt_campaign.ir_cron_execute_activities")
        self.assertTrue(
            self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]),
            "launching wakes the execution cron up",
        )
        with freeze_time(T0), self.mock_mail_gateway(), self.enter_registry_test_mode():
            cron.method_direct_trigger()
        self.assertEqual(steps["welcome"].processed_count, 4)
        self.assertEqual(len(self._new_mails), 4)
        self.assertTrue(
            self.env["ir.cron.trigger"].search(
                [("cron_id", "=", cron.id), ("call_at", "=", T0 + H)]
            ),
            "the cron plans its next run when the next step is due",
        )
        with freeze_time(T0 + H), self.enter_registry_test_mode():
            cron.method_direct_trigger()
        self.assertEqual(steps["tag"].processed_count, 4)
        self.assertIn(self.other_tag, self.alice.category_id)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
