"""SMS steps end to end against a loopback SMS gateway speaking the API of
Odoo's SMS service (tests/loopback_sms.py): a step is processed only when the
provider accepted its SMS; refusals, an unreachable provider and delivery
reports arriving later reach the step, the Event Log and the Results."""

from datetime import timedelta

from odoo.tests import HttpCase, tagged

from .common import T0, MktCampaignCommon

NUMBERS = {"alice": "+32470000001", "bob": "+32470000002", "carol": "+32470000004"}


@tagged("post_install", "-at_install", "mkt_campaign")
class TestSmsSteps(MktCampaignCommon, HttpCase):
    def _sms_campaign(self, follow_up=False):
        steps = [("text", {"activity_type": "sms"})]
        if follow_up:
            steps.append(
                ("later", {"parent": "text", "interval_number": 2, "interval_type": "days"})
            )
        campaign, activities = self._create_campaign(steps)
        self._launch(campaign)
        return campaign, activities

    def _events(self, campaign, partner):
        return (
            self.env["mkt.event"]
            .search(
                [
                    ("campaign_id", "=", campaign.id),
                    ("record_name", "=", partner.name),
                ]
            )
            .mapped("event_type")
        )

    def test_accepted(self):
        """Every SMS the provider accepted is sent, in one request, and counted."""
        campaign, steps = self._sms_campaign()
        self._run_queue(T0)
        self.assertEqual(set(self._trace_states(steps["text"]).values()), {"processed"})
        self.assertEqual(self.sms_gateway.requests, 1, "one request for the whole batch")
        sent = {sms["number"]: sms["content"] for sms in self.sms_gateway.sent}
        self.assertEqual(len(sent), 5)
        self.assertIn("Spring sale for Bob Buyer: 20% off today", sent[NUMBERS["bob"]])
        bob = self._mailing_trace(self._traces(steps["text"], self.bob))
        self.assertEqual(bob.trace_status, "pending", "accepted by the provider, not delivered yet")
        self.assertEqual(campaign.sent_sms_count, 5)
        self.assertEqual(self._events(campaign, self.bob), ["sent"])

    def test_refused(self):
        """A number the provider refuses fails its step with the provider's
        reason; it is not counted as sent."""
        self.sms_gateway.states[NUMBERS["bob"]] = "country_not_supported"
        campaign, steps = self._sms_campaign()
        self._run_queue(T0)
        bob = self._traces(steps["text"], self.bob)
        self.assertEqual(bob.state, "failed")
        self.assertIn("Country Not Supported", bob.error_message)
        self.assertIn("SMS provider", bob.error_message)
        self.assertEqual(self._traces(steps["text"], self.alice).state, "processed")
        self.assertEqual(campaign.sent_sms_count, 4)
        self.assertEqual(campaign.failed_count, 1)
        self.assertEqual(self._events(campaign, self.bob), ["failed"])

    def test_provider_down_retried(self):
        """With the gateway unreachable nothing is counted as sent: the steps
        are retried later, and the retry sends each SMS once."""
        self.sms_gateway.down = True
        campaign, steps = self._sms_campaign()
        self._run_queue(T0)
        self.assertEqual(set(self._trace_states(steps["text"]).values()), {"scheduled"})
        bob = self._traces(steps["text"], self.bob)
        self.assertIn("Attempt 1 failed", bob.error_message)
        self.assertIn("Server Error", bob.error_message)
        self.assertFalse(bob.mailing_trace_ids, "the failed attempt leaves no statistics")
        self.assertFalse(
            self.env["sms.sms"].sudo().search([("mailing_id", "=", steps["text"].mailing_id.id)]),
            "nor an SMS in error that could be resent by hand",
        )
        self.assertEqual(campaign.sent_sms_count, 0)
        self.assertFalse(self._events(campaign, self.bob))

        self.sms_gateway.down = False
        self._run_queue(T0 + timedelta(minutes=10))
        self.assertEqual(set(self._trace_states(steps["text"]).values()), {"processed"})
        numbers = [sms["number"] for sms in self.sms_gateway.sent]
        self.assertEqual(len(numbers), 5)
        self.assertEqual(len(set(numbers)), 5, "nobody got the SMS twice")
        self.assertEqual(campaign.sent_sms_count, 5)

    def test_delivery_report_failed_later(self):
        """Odoo's SMS webhook (/sms/status) receives the provider's delivery
        reports: 'not delivered' fails the step and cancels its follow-up,
        'delivered' keeps it, and a failure reported after the delivery, or
        twice, never moves a step backwards."""
        campaign, steps = self._sms_campaign(follow_up=True)
        self._run_queue(T0)
        self.assertEqual(campaign.sent_sms_count, 5)
        uuid_of = {sms["number"]: sms["uuid"] for sms in self.sms_gateway.sent}

        def report(number, status):
            response = self.sms_gateway.delivery_report(
                [uuid_of[number]],
                status,
                f"{self.base_url()}/sms/status",
                post=lambda url, payload: self.url_open(url, json=payload),
            )
            self.assertEqual(response.json().get("result"), "OK")

        report(NUMBERS["alice"], "delivered")
        report(NUMBERS["bob"], "not_delivered")
        self.env.invalidate_all()

        bob = self._traces(steps["text"], self.bob)
        self.assertEqual(bob.state, "failed")
        self.assertEqual(bob.error_message, "The SMS was not delivered: Not Delivered")
        self.assertEqual(self._traces(steps["later"], self.bob).state, "canceled")
        alice = self._traces(steps["text"], self.alice)
        self.assertEqual(alice.state, "processed")
        self.assertEqual(self._mailing_trace(alice).trace_status, "sent", "delivered")
        self.assertEqual(self._traces(steps["later"], self.alice).state, "scheduled")
        self.assertEqual(campaign.sent_sms_count, 4)
        self.assertEqual(sorted(self._events(campaign, self.bob)), ["failed"])

        # out of order and repeated: nothing moves backwards
        report(NUMBERS["alice"], "not_delivered")
        report(NUMBERS["bob"], "not_delivered")
        self.env.invalidate_all()
        self.assertEqual(alice.state, "processed")
        self.assertEqual(self._traces(steps["later"], self.alice).state, "scheduled")
        self.assertEqual(bob.state, "failed")
        self.assertEqual(campaign.sent_sms_count, 4)
