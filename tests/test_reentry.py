"""Re-entry cooldown: a record that completed (or left) a campaign enters it
again only when the campaign allows it and the cooldown has passed, and then
receives the steps again."""

from datetime import timedelta

from odoo.tests import freeze_time, tagged

from .common import T0, MktCampaignCommon

D = timedelta(days=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestReentry(MktCampaignCommon):
    def _participants(self, campaign, partner):
        return campaign.participant_ids.filtered(lambda p: p.res_id == partner.id).sorted("id")

    def _mailing_traces(self, activity, partner):
        return (
            self.env["mailing.trace"]
            .sudo()
            .search(
                [
                    ("mass_mailing_id", "=", activity.mailing_id.id),
                    ("model", "=", "res.partner"),
                    ("res_id", "=", partner.id),
                ],
                order="id",
            )
        )

    def _complete_once(self, **values):
        """Alice and Bob go through a one-step e-mail campaign at T0."""
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "in", (self.alice | self.bob).ids)]),
            **values,
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        self.assertEqual(set(campaign.participant_ids.mapped("end_date")), {T0})
        return campaign, steps["welcome"]

    def test_no_reentry_by_default(self):
        """With a cooldown of 0, a record that completed never enters again."""
        campaign, welcome = self._complete_once()
        self.assertEqual(campaign.reentry_days, 0)
        for when in (T0 + D, T0 + 400 * D):
            self._run_sync(when)
            self.assertEqual(len(campaign.participant_ids), 2)
            self.assertEqual(len(welcome.trace_ids), 2)
        self._run_queue(T0 + 400 * D)
        self.assertEqual(len(self._mailing_traces(welcome, self.alice)), 1)

    def test_reentry_after_cooldown(self):
        """With a cooldown of N days, the record enters again N days after it
        completed, not before, as a new participant that receives the steps
        again: the e-mail is generated and sent a second time."""
        campaign, welcome = self._complete_once(reentry_days=7)
        first_alice = self._participants(campaign, self.alice)

        self._run_sync(T0 + 7 * D - MIN)
        self.assertEqual(len(campaign.participant_ids), 2, "not before the cooldown")

        self._run_sync(T0 + 7 * D)
        alice = self._participants(campaign, self.alice)
        self.assertEqual(len(alice), 2)
        second = alice - first_alice
        self.assertEqual(second.state, "running")
        self.assertEqual(second.email, "alice@example.com")
        self.assertEqual(first_alice.state, "completed", "the past participation is kept")
        self.assertEqual(len(campaign.participant_ids), 4)
        self.assertEqual(second.trace_ids.state, "scheduled")
        self.assertEqual(second.trace_ids.activity_id, welcome)
        self.assertEqual(second.trace_ids.schedule_date, T0 + 7 * D)

        # running participants are never enrolled twice
        self._run_sync(T0 + 7 * D + MIN)
        self.assertEqual(len(campaign.participant_ids), 4)

        self._run_queue(T0 + 7 * D)
        self.assertEqual(second.trace_ids.state, "processed")
        self.assertEqual(second.state, "completed")
        mtraces = self._mailing_traces(welcome, self.alice)
        self.assertEqual(len(mtraces), 2, "a second message trace for the second participation")
        self.assertEqual(mtraces[1].mkt_trace_id, second.trace_ids)
        self.assertEqual(mtraces[1].trace_status, "sent", "not canceled as a duplicate")
        mails = mtraces.mail_mail_id
        self.assertEqual(len(mails), 2, "a second mail.mail is really created")
        self.assertEqual(mails[1].subject, "Spring sale for Alice Audience")
        self.assertEqual(mails[1].state, "sent")
        sent_to_alice = [m for m in self._mails if "alice@example.com" in str(m["email_to"])]
        self.assertEqual(len(sent_to_alice), 1, "the second e-mail left in the second run")

        # and again 7 days after the second completion, not 7 days after the first
        self._run_sync(T0 + 14 * D - MIN)
        self.assertEqual(len(campaign.participant_ids), 4)
        self._run_sync(T0 + 14 * D)
        self.assertEqual(len(self._participants(campaign, self.alice)), 3)

    def test_reentry_replays_whole_workflow(self):
        """The re-entered participant runs the workflow from its start,
        children included, independently of what happened the first time."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
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
                        "interval_number": 1,
                        "interval_type": "days",
                    },
                ),
            ],
            domain=repr([("id", "=", self.alice.id)]),
            reentry_days=3,
        )
        self._launch(campaign)
        self._run_queue(T0)
        self._event(steps["welcome"], self.alice, "open", when=T0 + timedelta(hours=2))
        self._run_queue(T0 + timedelta(hours=2))
        first = campaign.participant_ids
        self.assertEqual(first.state, "completed")
        self.assertEqual(first.end_date, T0 + timedelta(hours=2))
        self.assertEqual(self._traces(steps["reminder"]).state, "canceled")

        # the cooldown counts from the end of the participation
        self._run_sync(T0 + 3 * D + timedelta(hours=1))
        self.assertEqual(len(campaign.participant_ids), 1)
        self._run_sync(T0 + 3 * D + timedelta(hours=2))
        second = campaign.participant_ids - first
        self.assertEqual(len(second), 1)
        when = T0 + 3 * D + timedelta(hours=2)
        self._run_queue(when)
        self.assertEqual(
            second.trace_ids.filtered(lambda t: t.activity_id == steps["welcome"]).state,
            "processed",
        )
        # this time Alice does not open it: the reminder goes out a day later
        reminder = second.trace_ids.filtered(lambda t: t.activity_id == steps["reminder"])
        self.assertEqual((reminder.state, reminder.schedule_date), ("scheduled", when + D))
        self.assertFalse(second.trace_ids.filtered(lambda t: t.activity_id == steps["opened"]))
        self._run_queue(when + D)
        self.assertEqual(reminder.state, "processed")
        self.assertEqual(second.state, "completed")
        self.assertEqual(len(self._mailing_traces(steps["welcome"], self.alice)), 2)
        self.assertEqual(len(self._mailing_traces(steps["reminder"], self.alice)), 1)

    def test_reentry_after_leaving(self):
        """A participant that left (campaign stopped) may enter again after the
        cooldown, when the campaign runs again."""
        campaign, steps = self._create_campaign(
            [("welcome", {"interval_number": 2, "interval_type": "days"})],
            domain=repr([("id", "in", (self.alice | self.bob).ids)]),
            reentry_days=1,
        )
        self._launch(campaign)
        self._run_sync(T0 + 5 * D)
        self.assertEqual(len(campaign.participant_ids), 2, "running participants stay as they are")
        with freeze_time(T0 + 5 * D):
            campaign.action_stop()
            campaign.action_draft()
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"canceled"})
        self.assertEqual(set(campaign.participant_ids.mapped("end_date")), {T0 + 5 * D})
        self._launch(campaign, T0 + 5 * D + MIN)  # they left a minute ago
        self.assertEqual(len(campaign.participant_ids), 2)
        self._run_sync(T0 + 6 * D)
        self.assertEqual(len(campaign.participant_ids), 4)
        running = campaign.participant_ids.filtered(lambda p: p.state == "running")
        self.assertEqual(set(running.mapped("res_id")), set((self.alice | self.bob).ids))
        self.assertEqual(set(running.trace_ids.mapped("schedule_date")), {T0 + 8 * D})
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"canceled", "scheduled"})

    def test_reentry_with_unique_field(self):
        """With a unique field, the cooldown applies to the key: the two
        contact cards sharing an address enter again as one participant."""
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "in", (self.alice | self.alice_dup).ids)]),
            unique_field_id=self.env["ir.model.fields"]._get("res.partner", "email").id,
            reentry_days=2,
        )
        self._launch(campaign)
        self.assertEqual(campaign.participant_ids.res_id, self.alice.id)
        self._run_queue(T0)
        self._run_sync(T0 + D)
        self.assertEqual(len(campaign.participant_ids), 1)
        self._run_sync(T0 + 2 * D)
        self.assertEqual(len(campaign.participant_ids), 2)
        self.assertEqual(set(campaign.participant_ids.mapped("res_id")), {self.alice.id})
        self.assertEqual(len(steps["welcome"].trace_ids), 2)

    def test_late_event_of_past_participation(self):
        """A message of the first participation opened after the record
        entered again: its follow-up runs for the past participation, without
        disturbing the current one."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "opened",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_open",
                        "activity_type": "server_action",
                    },
                ),
            ],
            domain=repr([("id", "=", self.alice.id)]),
            reentry_days=1,
        )
        self._launch(campaign)
        self._run_queue(T0)
        first = campaign.participant_ids
        self.assertEqual(first.state, "completed")
        self._run_sync(T0 + D)
        second = campaign.participant_ids - first
        self.assertEqual(second.state, "running")

        first_welcome = first.trace_ids
        with freeze_time(T0 + D + H):
            self._mailing_trace(first_welcome).set_opened()
        self.env.invalidate_all()
        opened = first_welcome.child_ids
        self.assertEqual(opened.activity_id, steps["opened"])
        self.assertEqual(opened.participant_id, first)
        self.assertEqual(second.state, "running")
        self._run_queue(T0 + D + H)
        self.assertEqual(opened.state, "processed")
        self.assertEqual(first.state, "completed")
        self.assertEqual(
            second.trace_ids.filtered(lambda t: t.activity_id == steps["welcome"]).state,
            "processed",
        )

    def test_retry_step_of_past_participation(self):
        """Retrying a failed step of a past participation while the record is
        in the campaign again runs the step, the current participation intact."""
        failing = self.env["ir.actions.server"].create(
            {
                "name": "Fails",
                "model_id": self.partner_model.id,
                "state": "code",
                "code": "raise UserError('CRM is down')",
            }
        )
        campaign, steps = self._create_campaign(
            [("sync", {"activity_type": "server_action", "server_action_id": failing.id})],
            domain=repr([("id", "=", self.alice.id)]),
            reentry_days=1,
        )
        self._launch(campaign)
        self._run_queue(T0)
        first = campaign.participant_ids
        self.assertEqual((first.trace_ids.state, first.state), ("failed", "completed"))
        self._run_sync(T0 + D)
        second = campaign.participant_ids - first
        self.assertEqual(second.state, "running")

        failing.code = "pass"
        with freeze_time(T0 + D + H):
            first.trace_ids.action_retry()
        self._run_queue(T0 + D + H)
        self.assertEqual(first.trace_ids.state, "processed")
        self.assertEqual(second.trace_ids.state, "processed")
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
