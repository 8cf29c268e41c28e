from datetime import datetime, timedelta

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)
MIDNIGHT = datetime.combine(T0.date(), datetime.min.time())


@tagged("post_install", "-at_install", "mkt_campaign")
class TestDateTrigger(MktCampaignCommon):
    """Steps N days before / after a date of the record, and expiry."""

    def setUp(self):
        super().setUp()
        Lead = self.env["crm.lead"]
        self.soon, self.today, self.undated, self.past = Lead.create(
            [
                {
                    "name": "Soon",
                    "email_from": "soon@example.com",
                    "date_deadline": T0.date() + timedelta(days=10),
                },
                {
                    "name": "Today",
                    "email_from": "today@example.com",
                    "date_deadline": T0.date() + timedelta(days=3),
                },
                {"name": "Undated", "email_from": "undated@example.com", "date_deadline": False},
                {
                    "name": "Past",
                    "email_from": "past@example.com",
                    "date_deadline": T0.date() - timedelta(days=30),
                },
            ]
        )
        self.leads = self.soon | self.today | self.undated | self.past
        self.lead_model = self.env["ir.model"]._get("crm.lead")
        self.action = self.env["ir.actions.server"].create(
            {
                "name": "Mark as hot",
                "model_id": self.lead_model.id,
                "state": "code",
                "code": "records.write({'priority': '3'})",
            }
        )
        self.campaign = self.env["mkt.campaign"].create(
            {
                "name": "Deadline reminders",
                "model_id": self.lead_model.id,
                "domain": repr([("id", "in", self.leads.ids)]),
            }
        )
        self.deadline = self.env["ir.model.fields"]._get("crm.lead", "date_deadline")

    def _dated_step(self, **values):
        return self.env["mkt.activity"].create(
            {
                "name": "3 days before the deadline",
                "campaign_id": self.campaign.id,
                "activity_type": "server_action",
                "server_action_id": self.action.id,
                "trigger_type": "record_date",
                "date_field_id": self.deadline.id,
                "date_direction": "before",
                "interval_number": 3,
                "interval_type": "days",
                **values,
            }
        )

    def test_days_before_a_date(self):
        step = self._dated_step()
        self._launch(self.campaign)
        self.assertEqual(len(step.trace_ids), 4, "a first step: queued at enrolment")
        self._run_queue(T0)
        states = {t.res_id: (t.state, t.schedule_date) for t in step.trace_ids}
        self.assertEqual(
            states[self.soon.id],
            ("scheduled", MIDNIGHT + 7 * D),
            "waits until 3 days before its deadline",
        )
        self.assertEqual(states[self.today.id][0], "processed", "3 days before is today")
        self.assertEqual(states[self.undated.id][0], "rejected")
        self.assertEqual(states[self.past.id][0], "canceled")
        self.assertIn(
            "Expected Closing",
            step.trace_ids.filtered(lambda t: t.res_id == self.past.id).error_message,
        )
        self.assertEqual(self.today.priority, "3")
        self.assertNotEqual(self.soon.priority, "3")

        # the date is read again when the step comes up: a deadline moved
        # by two days moves the step
        self.soon.date_deadline = T0.date() + timedelta(days=12)
        self._run_queue(MIDNIGHT + 7 * D + H)
        soon_trace = step.trace_ids.filtered(lambda t: t.res_id == self.soon.id)
        self.assertEqual(
            (soon_trace.state, soon_trace.schedule_date), ("scheduled", MIDNIGHT + 9 * D)
        )
        self._run_queue(MIDNIGHT + 9 * D + H)
        self.assertEqual(soon_trace.state, "processed")
        self.assertEqual(self.soon.priority, "3")

    def test_days_after_a_date_as_child(self):
        first = self.env["mkt.activity"].create(
            {
                "name": "Welcome",
                "campaign_id": self.campaign.id,
                "activity_type": "server_action",
                "server_action_id": self.action.id,
                "trigger_type": "begin",
            }
        )
        step = self._dated_step(parent_id=first.id, date_direction="after", interval_number=1)
        self._launch(self.campaign)
        self._run_queue(T0)
        self._run_queue(T0)
        soon = step.trace_ids.filtered(lambda t: t.res_id == self.soon.id)
        self.assertEqual((soon.state, soon.schedule_date), ("scheduled", MIDNIGHT + 11 * D))
        self.assertEqual(soon.parent_id.activity_id, first)

    def test_trigger_in_words(self):
        """The workflow card says when a dated step runs."""
        deadline = self.deadline.field_description
        self.assertEqual(self._dated_step().trigger_description, f"3 days before {deadline}")
        self.assertEqual(
            self._dated_step(
                date_direction="after", interval_number=1, interval_type="weeks"
            ).trigger_description,
            f"1 week after {deadline}",
        )
        self.assertEqual(self._dated_step(interval_number=0).trigger_description, f"On {deadline}")

    def test_date_field_must_be_a_date_of_the_target(self):
        with self.assertRaises(ValidationError):
            self._dated_step(date_field_id=False)
        with self.assertRaises(ValidationError):
            self._dated_step(
                date_field_id=self.env["ir.model.fields"]._get("res.partner", "create_date").id
            )

    def test_expiry(self):
        """A step not executed within its expiry after it came due is
        canceled with that reason; one without expiry still runs."""
        expiring = self.env["mkt.activity"].create(
            {
                "name": "Flash sale",
                "campaign_id": self.campaign.id,
                "activity_type": "server_action",
                "server_action_id": self.action.id,
                "trigger_type": "begin",
                "interval_number": 1,
                "interval_type": "days",
                "expiry_number": 2,
                "expiry_type": "hours",
            }
        )
        lasting = self.env["mkt.activity"].create(
            {
                "name": "Newsletter",
                "campaign_id": self.campaign.id,
                "activity_type": "server_action",
                "server_action_id": self.action.id,
                "trigger_type": "begin",
                "interval_number": 1,
                "interval_type": "days",
            }
        )
        self._launch(self.campaign)
        self.campaign.action_pause()
        self._run_queue(T0 + D + 5 * H)
        self.assertEqual(
            set(expiring.trace_ids.mapped("state")),
            {"scheduled"},
            "a paused campaign's steps do not expire",
        )
        self.campaign.action_resume()
        self._run_queue(T0 + D + 5 * H)
        self.assertEqual(set(expiring.trace_ids.mapped("state")), {"canceled"})
        self.assertTrue(
            all(msg.startswith("Expired") for msg in expiring.trace_ids.mapped("error_message"))
        )
        self.assertEqual(set(lasting.trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(self.campaign.participant_ids.mapped("state")), {"completed"})
