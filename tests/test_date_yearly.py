"""Yearly date triggers: a step on the day and month of a date (birthdays,
anniversaries, contract renewals), each year, with the re-entry cooldown
bringing the record back for the next one."""

from datetime import date, datetime, timedelta

from odoo.tests import tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)


def midnight(day):
    return datetime.combine(day, datetime.min.time())


@tagged("post_install", "-at_install", "mkt_campaign")
class TestDateYearly(MktCampaignCommon):
    """T0 is 2026-03-02 09:00; the leads' dates are decades ago."""

    def setUp(self):
        super().setUp()
        self.lead_model = self.env["ir.model"]._get("crm.lead")
        self.action = self.env["ir.actions.server"].create(
            {
                "name": "Mark as hot",
                "model_id": self.lead_model.id,
                "state": "code",
                "code": "records.write({'priority': '3'})",
            }
        )
        self.deadline = self.env["ir.model.fields"]._get("crm.lead", "date_deadline")

    def _campaign(self, dates, field="date_deadline", **values):
        """A lead per date, in a new campaign of them."""
        leads = self.env["crm.lead"].create(
            [
                {"name": f"Lead {i}", "email_from": f"lead{i}@example.com", field: value}
                for i, value in enumerate(dates)
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Anniversaries",
                "model_id": self.lead_model.id,
                "domain": repr([("id", "in", leads.ids)]),
                **values,
            }
        )
        return campaign, leads

    def _yearly_step(self, campaign, **values):
        return self.env["mkt.activity"].create(
            {
                "name": "3 days before the anniversary",
                "campaign_id": campaign.id,
                "activity_type": "server_action",
                "server_action_id": self.action.id,
                "trigger_type": "record_date",
                "date_field_id": self.deadline.id,
                "date_direction": "before",
                "date_yearly": True,
                "interval_number": 3,
                "interval_type": "days",
                **values,
            }
        )

    def _state(self, step, lead):
        trace = step.trace_ids.filtered(lambda t: t.res_id == lead.id)
        return trace.state, trace.schedule_date

    def test_next_anniversary(self):
        """This year's anniversary when it is ahead, or passed by no more
        than the late window (the step runs now); next year's otherwise."""
        campaign, (ahead, passed, late, undated) = self._campaign(
            [
                date(1990, 3, 12),  # in 10 days: 3 days before is 2026-03-09
                date(1990, 2, 25),  # 5 days ago: 3 days before was 2026-02-22
                date(1990, 3, 5),  # 3 days before was 2026-03-02 00:00, 9 hours ago
                False,
            ]
        )
        step = self._yearly_step(campaign)
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(step, ahead), ("scheduled", midnight(date(2026, 3, 9))))
        self.assertEqual(
            self._state(step, passed),
            ("scheduled", midnight(date(2027, 2, 22))),
            "passed longer ago than a day: next year's, not canceled",
        )
        self.assertEqual(self._state(step, late)[0], "processed", "within the late window")
        self.assertEqual(late.priority, "3")
        self.assertEqual(self._state(step, undated)[0], "rejected")
        self.assertNotEqual(ahead.priority, "3")

        # it runs when it comes up, the date read again
        self._run_queue(midnight(date(2026, 3, 9)) + H)
        self.assertEqual(self._state(step, ahead)[0], "processed")
        self.assertEqual(ahead.priority, "3")
        self.assertEqual(self._state(step, passed)[0], "scheduled", "next year's waits its turn")
        self._run_queue(midnight(date(2027, 2, 22)) + H)
        self.assertEqual(self._state(step, passed)[0], "processed")
        self.assertEqual(passed.priority, "3")

    def test_late_window_is_the_expiry(self):
        """The late window is the step's expiry when it has one: a target
        passed 33 hours ago runs with an expiry of 3 days, and waits for next
        year with the default day."""
        campaign, leads = self._campaign([date(1990, 3, 4)])
        expiring = self._yearly_step(campaign, expiry_number=3, expiry_type="days")
        strict = self._yearly_step(campaign, name="Strict")
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(expiring, leads)[0], "processed")
        self.assertEqual(self._state(strict, leads), ("scheduled", midnight(date(2027, 3, 1))))

    def test_february_29(self):
        """A date on February 29 falls on February 28 in other years, and on
        February 29 in leap years."""
        campaign, leads = self._campaign([date(1992, 2, 29)])
        step = self._yearly_step(campaign, interval_number=0)
        self.assertEqual(step.trigger_description, "On Expected Closing, every year")
        when = datetime(2026, 2, 20, 9, 0)
        self._launch(campaign, when)
        self._run_queue(when)
        self.assertEqual(self._state(step, leads), ("scheduled", midnight(date(2026, 2, 28))))
        self._run_queue(midnight(date(2026, 2, 28)) + H)
        self.assertEqual(self._state(step, leads)[0], "processed")
        # the next ones
        value = midnight(date(1992, 2, 29))
        self.assertEqual(
            step._next_yearly_target(value, datetime(2027, 3, 1)), midnight(date(2028, 2, 29))
        )
        after = self._yearly_step(campaign, date_direction="after", interval_number=1)
        self.assertEqual(
            after._next_yearly_target(value, datetime(2027, 1, 1)), midnight(date(2027, 3, 1))
        )

    def test_datetime_field(self):
        """A date-time keeps its time of day."""
        campaign, leads = self._campaign([datetime(1995, 3, 10, 14, 30)], field="date_conversion")
        step = self._yearly_step(
            campaign,
            date_field_id=self.env["ir.model.fields"]._get("crm.lead", "date_conversion").id,
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(step, leads), ("scheduled", datetime(2026, 3, 7, 14, 30)))
        self._run_queue(datetime(2026, 3, 7, 14, 0))
        self.assertEqual(self._state(step, leads)[0], "scheduled")
        self._run_queue(datetime(2026, 3, 7, 14, 30))
        self.assertEqual(self._state(step, leads)[0], "processed")

    def test_after_the_date(self):
        """N days after the anniversary, across the turn of the year too."""
        campaign, (soon, passed) = self._campaign([date(1990, 2, 27), date(1990, 2, 10)])
        step = self._yearly_step(campaign, date_direction="after", interval_number=5)
        self.assertEqual(step.trigger_description, "5 days after Expected Closing, every year")
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(step, soon), ("scheduled", midnight(date(2026, 3, 4))))
        self.assertEqual(self._state(step, passed), ("scheduled", midnight(date(2027, 2, 15))))
        # December 30 + 5 days: on January 2 the last one is ahead, in January
        value = midnight(date(1990, 12, 30))
        self.assertEqual(
            step._next_yearly_target(value, datetime(2027, 1, 1)), midnight(date(2027, 1, 4))
        )
        # and 5 days before January 2 is in December
        before = self._yearly_step(campaign, interval_number=5)
        self.assertEqual(
            before._next_yearly_target(midnight(date(1990, 1, 2)), datetime(2026, 12, 20)),
            midnight(date(2026, 12, 28)),
        )
        self.assertEqual(
            before._next_yearly_target(midnight(date(1990, 1, 2)), datetime(2026, 12, 29)),
            midnight(date(2027, 12, 28)),
        )

    def test_first_anniversary_is_the_date(self):
        """A date ahead (a contract signed for next year) counts from itself,
        not from anniversaries before it."""
        campaign, leads = self._campaign([date(2027, 6, 1)])
        step = self._yearly_step(campaign)
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(step, leads), ("scheduled", midnight(date(2027, 5, 29))))

    def test_not_yearly_unchanged(self):
        """Without Every Year, a date decades ago is past: the step is canceled."""
        campaign, (ahead, past) = self._campaign([date(2026, 3, 12), date(1990, 3, 12)])
        step = self._yearly_step(campaign, date_yearly=False)
        self.assertEqual(step.trigger_description, "3 days before Expected Closing")
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._state(step, ahead), ("scheduled", midnight(date(2026, 3, 9))))
        self.assertEqual(self._state(step, past)[0], "canceled")

    def test_reentry_next_year(self):
        """A birthday campaign: the yearly step and a re-entry cooldown of 300
        days. The participant completes after this year's step, enters again
        after the cooldown and gets the step at the next anniversary."""
        campaign, leads = self._campaign([date(1990, 3, 12)], reentry_days=300)
        step = self._yearly_step(campaign)
        self._launch(campaign)
        self._run_queue(T0)
        first = campaign.participant_ids
        ran = midnight(date(2026, 3, 9)) + H
        self._run_queue(ran)
        self.assertEqual(self._state(step, leads)[0], "processed")
        self.assertEqual((first.state, first.end_date), ("completed", ran))

        self._run_sync(ran + 300 * D - H)
        self.assertEqual(campaign.participant_ids, first, "not before the cooldown")
        self._run_sync(ran + 300 * D)
        second = campaign.participant_ids - first
        self.assertEqual(len(second), 1)
        self.assertEqual(second.state, "running")
        self._run_queue(ran + 300 * D)
        self.assertEqual(
            (second.trace_ids.state, second.trace_ids.schedule_date),
            ("scheduled", midnight(date(2027, 3, 9))),
        )
        leads.priority = "0"
        self._run_queue(midnight(date(2027, 3, 9)) + H)
        self.assertEqual(second.trace_ids.state, "processed")
        self.assertEqual(second.state, "completed")
        self.assertEqual(leads.priority, "3")
        self.assertEqual(step.trace_ids.mapped("state"), ["processed", "processed"])

    def test_short_cooldown_never_twice(self):
        """With a cooldown shorter than the late window, the record entering
        again does not get this year's anniversary a second time."""
        campaign, leads = self._campaign([date(1990, 3, 5)], reentry_days=1)
        step = self._yearly_step(campaign, expiry_number=3, expiry_type="days")
        self._launch(campaign)
        self._run_queue(T0)
        first = campaign.participant_ids
        self.assertEqual((first.trace_ids.state, first.state), ("processed", "completed"))
        self._run_sync(T0 + D)
        second = campaign.participant_ids - first
        self.assertEqual(len(second), 1)
        self._run_queue(T0 + D)
        self.assertEqual(
            (second.trace_ids.state, second.trace_ids.schedule_date),
            ("scheduled", midnight(date(2027, 3, 2))),
        )
        self.assertEqual(len(step.trace_ids.filtered(lambda t: t.state == "processed")), 1)

    def test_test_mode_runs_at_once(self):
        """The rehearsal (Test mode) ignores the date, yearly or not."""
        campaign, leads = self._campaign([date(1990, 3, 12)], mode="test")
        step = self._yearly_step(campaign)
        self._launch(campaign)
        self.assertEqual(self._state(step, leads)[0], "processed")
