from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo.tests import freeze_time, tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWorkflow(MktCampaignCommon):
    def setUp(self):
        super().setUp()
        self.with_mail = self.partners - self.dan  # Dan has no e-mail address

    def _welcome_sent(self, campaign, steps):
        """Launch at T0 and send the 'welcome' e-mail step."""
        self._launch(campaign)
        self._run_queue(T0)
        self.assertTraceStates(
            steps["welcome"],
            {
                **dict.fromkeys(self.with_mail, "processed"),
                self.dan: "rejected",
            },
        )

    # ------------------------------------------------------------------
    # Triggers
    # ------------------------------------------------------------------

    def test_after_parent(self):
        """An 'after the parent step' child runs its delay after the parent was
        processed, for the participants whose parent step was processed."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 2, "interval_type": "days"}),
            ]
        )
        self._welcome_sent(campaign, steps)
        welcome = steps["welcome"].trace_ids
        self.assertEqual(set(welcome.mapped("processed_date")), {T0})
        # the e-mail was rendered for each recipient and linked to the step
        alice_trace = self._traces(steps["welcome"], self.alice)
        mail = self._mailing_trace(alice_trace).mail_mail_id
        self.assertEqual(mail.subject, "Spring sale for Alice Audience")
        self.assertIn("Hello Alice Audience", mail.body_html)
        self.assertEqual(mail.state, "sent")
        self.assertEqual(self._mailing_trace(alice_trace).trace_status, "sent")
        dan_trace = self._traces(steps["welcome"], self.dan)
        self.assertTrue(dan_trace.error_message)

        follow_up = steps["follow_up"].trace_ids
        self.assertEqual(follow_up.parent_id, welcome.filtered(lambda t: t.state == "processed"))
        self.assertEqual(set(follow_up.mapped("schedule_date")), {T0 + 2 * D})
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"running", "completed"})

        self._run_queue(T0 + 2 * D - timedelta(minutes=1))
        self.assertEqual(set(follow_up.mapped("state")), {"scheduled"})
        self._run_queue(T0 + 2 * D)
        self.assertEqual(set(follow_up.mapped("state")), {"processed"})
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})

    def test_email_open_and_not_open(self):
        """An open queues the 'opened' child and cancels the 'not opened' one;
        the others get the 'not opened' child once the delay is over."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "thanks",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_open",
                        "activity_type": "server_action",
                        "interval_number": 1,
                    },
                ),
                (
                    "reminder",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 3,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        self._welcome_sent(campaign, steps)
        self.assertFalse(steps["thanks"].trace_ids, "nothing opened yet")
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("schedule_date")), {T0 + 3 * D})

        self._event(steps["welcome"], self.alice, "open", T0 + H)
        welcome_alice = self._traces(steps["welcome"], self.alice)
        self.assertEqual(welcome_alice.open_datetime, T0 + H)
        self.assertEqual(welcome_alice.opens, 1)
        reminder_alice = self._traces(steps["reminder"], self.alice)
        self.assertEqual(reminder_alice.state, "canceled")
        self.assertEqual(reminder_alice.error_message, "Canceled: the parent message was opened.")
        thanks_alice = self._traces(steps["thanks"], self.alice)
        self.assertEqual(thanks_alice.parent_id, welcome_alice)
        self.assertEqual(thanks_alice.schedule_date, T0 + 2 * H)

        # a second open changes nothing
        self._event(steps["welcome"], self.alice, "open", T0 + 5 * H)
        self.assertEqual(welcome_alice.open_datetime, T0 + H)
        self.assertEqual(len(steps["thanks"].trace_ids), 1)

        self._run_queue(T0 + 2 * H)
        self.assertEqual(thanks_alice.state, "processed")
        self.assertIn(self.other_tag, self.alice.category_id)

        self._run_queue(T0 + 3 * D)
        self.assertTraceStates(
            steps["reminder"],
            {
                self.alice: "canceled",
                self.bob: "processed",
                self.alice_dup: "processed",
                self.carol: "processed",
            },
        )
        self.assertEqual(
            self._mailing_trace(self._traces(steps["reminder"], self.bob)).mail_mail_id.subject,
            "Spring sale for Bob Buyer",
        )
        self.assertEqual(steps["thanks"].trace_ids.res_id, self.alice.id)

    def test_email_click_and_not_click(self):
        """A click on the tracked link queues the 'clicked' child and cancels
        the 'not clicked' and 'not opened' ones (a click implies an open)."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "clicked",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_click",
                        "activity_type": "server_action",
                    },
                ),
                (
                    "not_clicked",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_click",
                        "interval_number": 2,
                        "interval_type": "days",
                    },
                ),
                (
                    "not_opened",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 2,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        self._welcome_sent(campaign, steps)
        with freeze_time(T0 + H):
            mtrace = self._click_link(steps["welcome"], self.bob)
        self.assertEqual(mtrace.trace_status, "open")
        welcome_bob = self._traces(steps["welcome"], self.bob)
        self.assertEqual(welcome_bob.click_datetime, T0 + H)
        self.assertEqual(welcome_bob.open_datetime, T0 + H)
        self.assertEqual(welcome_bob.clicks, 1)
        self.assertEqual(self._traces(steps["clicked"], self.bob).schedule_date, T0 + H)
        for key in ("not_clicked", "not_opened"):
            self.assertEqual(self._traces(steps[key], self.bob).state, "canceled")
        self.assertEqual(
            self._traces(steps["not_clicked"], self.bob).error_message,
            "Canceled: the parent message was clicked.",
        )

        self._run_queue(T0 + 2 * D)
        self.assertTraceStates(steps["clicked"], {self.bob: "processed"})
        self.assertIn(self.other_tag, self.bob.category_id)
        others = dict.fromkeys(self.with_mail - self.bob, "processed")
        self.assertTraceStates(steps["not_clicked"], {**others, self.bob: "canceled"})
        self.assertTraceStates(steps["not_opened"], {**others, self.bob: "canceled"})

    def test_email_reply_and_not_reply(self):
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "replied",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_reply",
                        "activity_type": "server_action",
                        "interval_number": 2,
                    },
                ),
                (
                    "not_replied",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_reply",
                        "interval_number": 1,
                        "interval_type": "weeks",
                    },
                ),
            ]
        )
        self._welcome_sent(campaign, steps)
        self._event(steps["welcome"], self.carol, "reply", T0 + D)
        welcome_carol = self._traces(steps["welcome"], self.carol)
        self.assertEqual(welcome_carol.reply_datetime, T0 + D)
        self.assertEqual(welcome_carol.open_datetime, T0 + D, "a reply implies an open")
        self.assertEqual(self._traces(steps["replied"], self.carol).schedule_date, T0 + D + 2 * H)
        self.assertEqual(
            self._traces(steps["not_replied"], self.carol).error_message,
            "Canceled: the parent message was replied to.",
        )

        self._run_queue(T0 + 7 * D)
        self.assertTraceStates(steps["replied"], {self.carol: "processed"})
        self.assertTraceStates(
            steps["not_replied"],
            {
                **dict.fromkeys(self.with_mail - self.carol, "processed"),
                self.carol: "canceled",
            },
        )

    def test_email_bounce_cancels_other_children(self):
        """A bounce (processed by the mail gateway) cancels every pending child
        of the bounced step and queues the 'bounced' child only."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 2, "interval_type": "days"}),
                (
                    "not_opened",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_not_open",
                        "interval_number": 3,
                        "interval_type": "days",
                    },
                ),
                (
                    "cleanup",
                    {
                        "parent": "welcome",
                        "trigger_type": "email_bounce",
                        "activity_type": "server_action",
                    },
                ),
            ]
        )
        self._welcome_sent(campaign, steps)
        with freeze_time(T0 + H):
            self.gateway_mail_trace_bounce(steps["welcome"].mailing_id, self.carol)
        self.env.invalidate_all()
        welcome_carol = self._traces(steps["welcome"], self.carol)
        self.assertEqual(welcome_carol.bounce_datetime, T0 + H)
        self.assertEqual(self._mailing_trace(welcome_carol).trace_status, "bounce")
        for key in ("follow_up", "not_opened"):
            trace = self._traces(steps[key], self.carol)
            self.assertEqual(
                (trace.state, trace.error_message), ("canceled", "The parent e-mail bounced.")
            )
        self.assertEqual(self._traces(steps["cleanup"], self.carol).state, "scheduled")

        self._run_queue(T0 + 3 * D)
        self.assertTraceStates(steps["cleanup"], {self.carol: "processed"})
        self.assertIn(self.other_tag, self.carol.category_id)
        self.assertNotIn(self.other_tag, self.bob.category_id)
        expected = {
            **dict.fromkeys(self.with_mail - self.carol, "processed"),
            self.carol: "canceled",
        }
        self.assertTraceStates(steps["follow_up"], expected)
        self.assertTraceStates(steps["not_opened"], expected)

    def test_sms_click_and_not_click(self):
        campaign, steps = self._create_campaign(
            [
                ("welcome", {"activity_type": "sms"}),
                (
                    "clicked",
                    {
                        "parent": "welcome",
                        "trigger_type": "sms_click",
                        "activity_type": "server_action",
                    },
                ),
                (
                    "not_clicked",
                    {
                        "parent": "welcome",
                        "trigger_type": "sms_not_click",
                        "interval_number": 1,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        self.assertEqual(steps["welcome"].mailing_id.mailing_type, "sms")
        self._launch(campaign)
        self._run_queue(T0)
        # every contact has a phone number: the SMS is generated for all of them
        self.assertTraceStates(steps["welcome"], dict.fromkeys(self.partners, "processed"))
        welcome_dan = self._traces(steps["welcome"], self.dan)
        mtrace = self._mailing_trace(welcome_dan)
        self.assertEqual(mtrace.trace_type, "sms")
        sms = self.env["sms.sms"].sudo().search([("mailing_trace_ids", "in", mtrace.ids)])
        self.assertEqual(sms.body.split("\n")[0], "Spring sale for Dan No-Mail: 20% off today")

        self._event(steps["welcome"], self.dan, "click", T0 + H)
        self.assertEqual(welcome_dan.click_datetime, T0 + H)
        self.assertEqual(
            self._traces(steps["not_clicked"], self.dan).error_message,
            "Canceled: the parent message was clicked.",
        )
        self._run_queue(T0 + D)
        self.assertTraceStates(steps["clicked"], {self.dan: "processed"})
        self.assertTraceStates(
            steps["not_clicked"],
            {
                **dict.fromkeys(self.partners - self.dan, "processed"),
                self.dan: "canceled",
            },
        )
        self.assertIn(self.other_tag, self.dan.category_id)

    def test_recipients_not_mailed_are_rejected(self):
        """Email Marketing's rules apply: blacklisted, invalid or missing
        addresses are not mailed, and the step says why."""
        self.env["mail.blacklist"]._add("alice@example.com")
        self.bob.email = "bob-at-nowhere"
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        self._run_queue(T0)
        self.assertTraceStates(
            steps["welcome"],
            {
                self.alice: "rejected",
                self.alice_dup: "rejected",
                self.bob: "rejected",
                self.carol: "processed",
                self.dan: "rejected",
            },
        )
        reasons = {t.res_id: t.error_message for t in steps["welcome"].trace_ids}
        self.assertEqual(reasons[self.alice.id], "Blacklisted Address")
        self.assertEqual(reasons[self.alice_dup.id], "Blacklisted Address")
        self.assertEqual(reasons[self.bob.id], "Invalid email address")
        self.assertEqual(reasons[self.dan.id], "Missing email address")
        self.assertEqual(self._new_mails.mapped("res_id"), self.carol.ids)
        self.assertEqual(
            (steps["welcome"].processed_count, steps["welcome"].rejected_count), (1, 4)
        )

    # ------------------------------------------------------------------
    # Delays, filters, edits
    # ------------------------------------------------------------------

    def test_delays(self):
        """Each delay unit: the step is not run a minute before it is due, and
        is run once due."""
        delays = {
            "5 hours": (5, "hours", T0 + 5 * H),
            "2 days": (2, "days", T0 + 2 * D),
            "1 week": (1, "weeks", T0 + 7 * D),
            "1 month": (1, "months", T0 + relativedelta(months=1)),
        }
        campaign, steps = self._create_campaign(
            [
                (
                    key,
                    {
                        "activity_type": "server_action",
                        "interval_number": number,
                        "interval_type": unit,
                    },
                )
                for key, (number, unit, _due) in delays.items()
            ]
        )
        self._launch(campaign)
        for key, (_number, _unit, due) in delays.items():
            with self.subTest(delay=key):
                traces = steps[key].trace_ids
                self.assertEqual(set(traces.mapped("schedule_date")), {due})
                self._run_queue(due - timedelta(minutes=1))
                self.assertEqual(set(traces.mapped("state")), {"scheduled"})
                self._run_queue(due)
                self.assertEqual(set(traces.mapped("state")), {"processed"})
                self.assertEqual(set(traces.mapped("processed_date")), {due})
        self.assertEqual(T0 + relativedelta(months=1), T0.replace(month=4))

    def test_applied_filter_rejects(self):
        """A step's filter is checked when it comes due: records that stopped
        matching, or were deleted, are rejected with the reason."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                (
                    "follow_up",
                    {
                        "parent": "welcome",
                        "interval_number": 1,
                        "interval_type": "days",
                        "domain": repr([("category_id", "not in", self.other_tag.ids)]),
                    },
                ),
            ]
        )
        self._welcome_sent(campaign, steps)
        self.bob.category_id += self.other_tag
        self.carol.unlink()
        self._run_queue(T0 + D)
        follow_up = steps["follow_up"]
        by_res = {t.res_id: t for t in follow_up.trace_ids}
        self.assertEqual(
            (by_res[self.bob.id].state, by_res[self.bob.id].error_message),
            ("rejected", "The record no longer matches the step's filter."),
        )
        self.assertEqual(
            (by_res[self.carol.id].state, by_res[self.carol.id].error_message),
            ("rejected", "The record no longer exists."),
        )
        self.assertEqual(
            {by_res[self.alice.id].state, by_res[self.alice_dup.id].state}, {"processed"}
        )
        self.assertFalse(by_res[self.bob.id].mailing_trace_ids, "nothing sent to a rejected record")
        # statistics per step
        self.assertEqual(
            (follow_up.processed_count, follow_up.rejected_count, follow_up.scheduled_count),
            (2, 2, 0),
        )
        self.assertEqual(
            (steps["welcome"].processed_count, steps["welcome"].rejected_count), (4, 1)
        )

    def test_new_step_on_running_campaign(self):
        """A step added under a parent that already ran is not sent to the
        participants who went past it; later participants get it."""
        campaign, steps = self._create_campaign([("welcome", {})])
        self._welcome_sent(campaign, steps)
        late = self._add_step(campaign, "Late addition", parent=steps["welcome"])
        self._run_queue(T0 + H)
        self.assertFalse(late.trace_ids)

        newcomer = self._new_contact()
        self._run_sync(T0 + 2 * H)
        self._run_queue(T0 + 2 * H)
        self._run_queue(T0 + 2 * H)
        self.assertEqual(self._traces(steps["welcome"], newcomer).state, "processed")
        self.assertEqual(late.trace_ids.res_id, newcomer.id)
        self.assertEqual(late.trace_ids.state, "processed")

    def test_server_action_step(self):
        """A server action step runs once on the whole batch of due records."""
        action = self._tagging_action()
        action.code += "\nrecords.write({'ref': 'batch of %s' % len(records)})"
        campaign, steps = self._create_campaign(
            [
                ("tag", {"activity_type": "server_action", "server_action_id": action.id}),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertTraceStates(steps["tag"], dict.fromkeys(self.partners, "processed"))
        for partner in self.partners:
            self.assertIn(self.other_tag, partner.category_id)
        self.assertNotIn(self.other_tag, self.outsider.category_id)
        self.assertEqual(set(self.partners.mapped("ref")), {"batch of 5"}, "one call for all")
        self.assertEqual(steps["tag"].processed_count, 5)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})

    def test_server_action_failure(self):
        """A failing action fails its steps with the error, without undoing the
        rest of the queue run."""
        broken = self.env["ir.actions.server"].create(
            {
                "name": "Broken sync",
                "model_id": self.partner_model.id,
                "state": "code",
                "code": "records.write({'comment': 'touched'})\n"
                "raise UserError('The stock API is down')",
            }
        )
        campaign, steps = self._create_campaign(
            [
                ("sync", {"activity_type": "server_action", "server_action_id": broken.id}),
                ("tag", {"activity_type": "server_action"}),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(steps["sync"].trace_ids.mapped("state")), {"failed"})
        self.assertEqual(
            set(steps["sync"].trace_ids.mapped("error_message")), {"The stock API is down"}
        )
        self.assertFalse(any(self.partners.mapped("comment")), "the failed action is rolled back")
        self.assertEqual(set(steps["tag"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(steps["sync"].failed_count, 5)
