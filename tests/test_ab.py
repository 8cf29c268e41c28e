"""A/B test of an e-mail step (issue 12 item 8): variants with a share of
the participants each, the winner by open rate sent to the others after the
test period, results per variant."""

from collections import Counter, defaultdict
from datetime import timedelta

from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, tagged
from odoo.tools import email_normalize

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

    def _ab_campaign(self, domain=None):
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=domain or repr([("id", "in", self.crowd.ids)]),
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

    def _run_ab_queue(self, when, received):
        """One queue run; the A/B e-mails it sent are added to ``received``
        ({address: [subject, ...]})."""
        self._run_queue(when)
        for mail in self._mails:
            if mail["subject"][:3] in ("A: ", "B: "):
                for address in mail["email_to"]:
                    received[email_normalize(address)].append(mail["subject"])

    def _open_long_variant(self, step):
        long_ = step.ab_variant_ids.sorted("sequence")[1]
        for trace in step.trace_ids.filtered(
            lambda t: t.ab_variant_id == long_ and t.state == "processed"
        ):
            self._mailing_trace(trace).set_opened()
        self.env.invalidate_all()
        return long_

    def test_rows_not_sent_before_the_decision_get_the_winner(self):
        """A participant assigned a test variant but held by the frequency cap
        when the winner is chosen gets the winner, not the losing variant;
        the messages sent during the test keep their variant."""
        Params = self.env["ir.config_parameter"].sudo()
        Params.set_param("mkt_campaign.cap_all", "0")
        Params.set_param("mkt_campaign.quiet_hours", False)
        Params.set_param("mkt_campaign.cap_email", "1")
        Params.set_param("mkt_campaign.cap_email_period", "week")
        # half the crowd got a newsletter an hour before the test: capped for a week
        capped = self.crowd[:20]
        newsletter, _steps = self._create_campaign(
            [("news", {})], name="Newsletter", domain=repr([("id", "in", capped.ids)])
        )
        self._launch(newsletter, T0 - H)
        self._run_queue(T0 - H)
        self.assertEqual(len(self._mails), len(capped))

        received = defaultdict(list)
        campaign, step = self._ab_campaign()
        self._launch(campaign)
        self._run_ab_queue(T0, received)
        traces = step.trace_ids
        sent_in_test = traces.filtered(lambda t: t.state == "processed")
        held_by_cap = traces.filtered(lambda t: t.ab_group == "test" and t.state == "scheduled")
        self.assertTrue(sent_in_test)
        self.assertTrue(held_by_cap, "a capped participant of a test bucket waits")
        self.assertTrue(all(t.res_id in capped.ids for t in held_by_cap))
        self.assertIn("frequency cap", held_by_cap[0].error_message)
        test_variants = {t.id: t.ab_variant_id for t in sent_in_test}

        long_ = self._open_long_variant(step)
        with freeze_time(T0 + 2 * H):
            self.env["mkt.activity"]._cron_ab_decide()
        self.assertEqual(step.ab_winner_id, long_)
        # at the decision every row not sent gets the winner, the sent ones keep theirs
        pending = traces - sent_in_test
        self.assertEqual(set(pending.mapped("state")), {"scheduled"})
        self.assertEqual(pending.ab_variant_id, long_)
        self.assertEqual(set(pending.mapped("ab_group")), {"winner"})
        self.assertEqual({t.id: t.ab_variant_id for t in sent_in_test}, test_variants)
        self.assertEqual(set(sent_in_test.mapped("ab_group")), {"test"})

        # the rest is sent after the decision, the capped ones once the cap frees
        self._run_ab_queue(T0 + 2 * H, received)
        self.assertEqual(set(held_by_cap.mapped("state")), {"scheduled"})
        self._run_ab_queue(T0 - H + 7 * 24 * H + timedelta(minutes=1), received)
        self.assertEqual(set(traces.mapped("state")), {"processed"})
        self.assertEqual(held_by_cap.ab_variant_id, long_)
        self.assertEqual(set(held_by_cap.mapped("ab_group")), {"winner"})
        for trace in held_by_cap:
            address = self.env["res.partner"].browse(trace.res_id).email
            self.assertEqual(len(received[address]), 1)
            self.assertTrue(received[address][0].startswith("B: "), received[address])
        # the figures of the test stay those of the test; nobody got two messages
        self.assertEqual({t.id: t.ab_variant_id for t in sent_in_test}, test_variants)
        self.assertEqual(sum(v.sent_count for v in step.ab_variant_ids), len(sent_in_test))
        self.assertEqual(long_.winner_sent_count, len(traces) - len(sent_in_test))
        self.assertEqual(sorted(received), sorted(self.crowd.mapped("email")))
        self.assertEqual({len(subjects) for subjects in received.values()}, {1})

    def test_participant_coming_after_the_decision_gets_the_winner(self):
        """A participant who enters after the winner is chosen gets the
        winner even when their bucket falls in a variant's share."""
        received = defaultdict(list)
        campaign, step = self._ab_campaign(domain=repr([("email", "=like", "abtester%")]))
        self._launch(campaign)
        self._run_ab_queue(T0, received)
        sent_in_test = step.trace_ids.filtered(lambda t: t.state == "processed")
        test_variants = {t.id: t.ab_variant_id for t in sent_in_test}
        long_ = self._open_long_variant(step)
        with freeze_time(T0 + 2 * H):
            self.env["mkt.activity"]._cron_ab_decide()
        self._run_ab_queue(T0 + 2 * H, received)
        self.assertEqual(step.ab_winner_id, long_)

        newcomers = self.env["res.partner"].create(
            [
                {"name": f"Latecomer {n:02d}", "email": f"abtester-late{n:02d}@example.com"}
                for n in range(20)
            ]
        )
        self._run_sync(T0 + 3 * H)
        late = step.trace_ids.filtered(lambda t: t.res_id in newcomers.ids)
        self.assertEqual(len(late), len(newcomers))
        # the buckets of the test (both variants: 0-49) hold some of them
        self.env.flush_all()
        self.env.cr.execute(
            """SELECT count(*) FROM mkt_trace
                WHERE id = ANY(%s)
                  AND mod(abs(hashtext(participant_id::text || '/' || %s::text)), 100) < 50""",
            [late.ids, step.id],
        )
        self.assertTrue(self.env.cr.fetchone()[0], "a latecomer falls in a test bucket")
        self._run_ab_queue(T0 + 3 * H, received)
        self.assertEqual(set(late.mapped("state")), {"processed"})
        self.assertEqual(late.ab_variant_id, long_)
        self.assertEqual(set(late.mapped("ab_group")), {"winner"})
        for partner in newcomers:
            self.assertEqual(len(received[partner.email]), 1)
            self.assertTrue(received[partner.email][0].startswith("B: "))
        self.assertEqual({t.id: t.ab_variant_id for t in sent_in_test}, test_variants)
        self.assertEqual(sum(v.sent_count for v in step.ab_variant_ids), len(sent_in_test))
        self.assertEqual({len(subjects) for subjects in received.values()}, {1})
        self.assertEqual(len(received), len(self.crowd) + len(newcomers))

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
        with freeze_time(T0 + H):  # during the test period
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
