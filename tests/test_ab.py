"""A/B test of an e-mail step (issue 12 item 8): variants with a share of
the participants each, the winner by open rate sent to the others after the
test period, results per variant."""

from collections import Counter
from datetime import timedelta

from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestAbTest(MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.crowd = cls.env["res.partner"].create(
            [
                {
                    "name": f"Tester {n:02d}",
                    "email": f"abtester{n:02d}@example.com",
                    "category_id": cls.tag.ids,
                }
                for n in range(40)
            ]
        )

    def _ab_campaign(self):
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "in", self.crowd.ids)]),
        )
        step = steps["welcome"]
        step.write(
            {
                "ab_enabled": True,
                "ab_criterion": "open",
                "ab_test_hours": 2,
                "ab_variant_ids": [
                    (0, 0, {"name": "Short", "share": 25, "subject": "A: hi {{ object.name }}"}),
                    (
                        0,
                        0,
                        {
                            "name": "Long",
                            "share": 25,
                            "subject": "B: a longer subject for {{ object.name }}",
                        },
                    ),
                ],
            }
        )
        return campaign, step

    def _mails_per_partner(self):
        counter = Counter()
        for mail in self._mails:
            for partner in self.crowd:
                if any(partner.email in to for to in mail["email_to"]):
                    counter[partner.id] += 1
        return counter

    def test_winner_by_open_rate_sent_to_the_rest(self):
        campaign, step = self._ab_campaign()
        short, long_ = step.ab_variant_ids.sorted("sequence")
        self.assertEqual(step.ab_rest_share, 50)
        self.assertNotEqual(short.mailing_id, step.mailing_id, "each variant has its content")
        self._launch(campaign)
        self._run_queue(T0)
        traces = step.trace_ids
        tested = traces.filtered(lambda t: t.state == "processed")
        held = traces - tested
        # deterministic shares: about a quarter each, the rest held for the winner
        self.assertTrue(tested and held, "some participants tested, the others wait")
        self.assertEqual(set(tested.mapped("ab_group")), {"test"})
        self.assertEqual(set(tested.ab_variant_id.ids), {short.id, long_.id})
        self.assertFalse(held.ab_variant_id)
        self.assertEqual(set(held.mapped("state")), {"scheduled"})
        self.assertEqual(set(held.mapped("schedule_date")), {T0 + 2 * H})
        self.assertIn("Waiting for the winner", held[0].error_message)
        self.assertEqual(step.ab_test_start, T0)
        # each tested participant got the subject of their variant, once
        for trace in tested:
            partner = self.env["res.partner"].browse(trace.res_id)
            mails = [m for m in self._mails if any(partner.email in to for to in m["email_to"])]
            self.assertEqual(len(mails), 1)
            prefix = "A: " if trace.ab_variant_id == short else "B: "
            self.assertTrue(mails[0]["subject"].startswith(prefix), mails[0]["subject"])
        self.assertEqual(len(self._mails), len(tested))

        # the "Long" variant's recipients open it, the "Short" ones do not
        for trace in tested.filtered(lambda t: t.ab_variant_id == long_):
            self._mailing_trace(trace).set_opened()
        self.env.invalidate_all()
        self.assertEqual(long_.open_rate, 100.0)
        self.assertEqual(short.open_rate, 0.0)
        self.assertEqual(short.sent_count + long_.sent_count, len(tested))

        # before the end of the test period nothing is decided
        with freeze_time(T0 + H):
            self.env["mkt.activity"]._cron_ab_decide()
        self.assertFalse(step.ab_winner_id)
        with freeze_time(T0 + 2 * H):
            self.env["mkt.activity"]._cron_ab_decide()
        self.assertEqual(step.ab_winner_id, long_)
        self.assertTrue(long_.is_winner)

        sent_before = len(self._mails)
        self._run_queue(T0 + 2 * H)
        self.assertEqual(set(held.mapped("state")), {"processed"})
        self.assertEqual(set(held.mapped("ab_group")), {"winner"})
        self.assertEqual(held.ab_variant_id, long_)
        self.assertTrue(all(m["subject"].startswith("B: ") for m in self._mails))
        self.assertEqual(len(self._mails), len(held), "the queue run sent the rest only")
        self.assertEqual(long_.winner_sent_count, len(held))
        # nobody got two variants, everybody got one
        self.assertTrue(sent_before)
        self.assertEqual(set(step.trace_ids.mapped("state")), {"processed"})
        self.assertEqual(len(step.trace_ids), len(self.crowd))
        self.assertEqual(len(set(step.trace_ids.mapped("participant_id"))), len(self.crowd))
        self.assertEqual(len(step.trace_ids.mailing_trace_ids), len(self.crowd))

    def test_assignment_is_deterministic(self):
        """The same participants fall in the same variants: the assignment
        depends on the participant and the step only."""
        campaign, step = self._ab_campaign()
        self._launch(campaign)
        self._run_queue(T0)
        first = {t.participant_id.id: t.ab_variant_id.id for t in step.trace_ids}
        traces = step.trace_ids.filtered("ab_variant_id")
        # forget the assignment and assign again
        traces.sudo().write({"ab_variant_id": False, "ab_group": False})
        traces.sudo().write({"state": "processing"})
        traces.sudo()._ab_assign(step)
        self.assertEqual(
            {t.participant_id.id: t.ab_variant_id.id for t in traces},
            {pid: vid for pid, vid in first.items() if vid},
        )

    def test_email_marketing_ab_refused_on_step_mailing(self):
        _campaign, step = self._ab_campaign()
        with self.assertRaises(ValidationError):
            step.mailing_id.ab_testing_enabled = True
        with self.assertRaises(ValidationError):
            step.ab_variant_ids[0].share = 90  # 90 + 25 > 100

    def test_launch_needs_two_variants(self):
        campaign, step = self._ab_campaign()
        step.ab_variant_ids[1].unlink()
        with self.assertRaises(ValidationError):
            campaign.action_start()
