from datetime import timedelta

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestEnrolment(MktCampaignCommon):
    def _email_field(self, model="res.partner", fname="email"):
        return self.env["ir.model.fields"]._get(model, fname)

    def test_enrols_matching_records_only(self):
        """Launching enrols exactly the records matching the filter, once each,
        with their first step queued at launch time."""
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)

        self.assertEqual(campaign.state, "running")
        participants = campaign.participant_ids
        self.assertEqual(sorted(participants.mapped("res_id")), sorted(self.partners.ids))
        self.assertNotIn(self.outsider.id, participants.mapped("res_id"))
        self.assertEqual(campaign.participant_count, 5)
        self.assertEqual(set(participants.mapped("state")), {"running"})
        self.assertFalse(any(participants.mapped("is_test")))
        self.assertEqual(campaign.last_sync_date, T0)
        # one first step per participant, due now
        traces = steps["welcome"].trace_ids
        self.assertEqual(traces.participant_id, participants)
        self.assertEqual(set(traces.mapped("state")), {"scheduled"})
        self.assertEqual(set(traces.mapped("schedule_date")), {T0})
        self.assertEqual(campaign.trace_count, 5)
        self.assertTrue(
            campaign.utm_campaign_id, "launching attributes the campaign to a UTM campaign"
        )
        self.assertEqual(steps["welcome"].mailing_id.campaign_id, campaign.utm_campaign_id)

    def test_enrolment_narrower_filter(self):
        """The filter is applied as written: a filter on e-mail keeps the
        contact without address out."""
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("category_id", "in", self.tag.ids), ("email", "!=", False)]),
        )
        self.assertEqual(campaign.record_count, 4)
        campaign.action_start()
        self.assertEqual(
            sorted(campaign.participant_ids.mapped("res_id")),
            sorted((self.partners - self.dan).ids),
        )

    def test_participant_columns(self):
        """The participant keeps the record's name, e-mail and phone as they
        were at enrolment."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.action_start()
        by_res = {p.res_id: p for p in campaign.participant_ids}
        alice = by_res[self.alice.id]
        self.assertEqual(alice.record_name, "Alice Audience")
        self.assertEqual(alice.display_name, "Alice Audience")
        self.assertEqual(alice.email, "alice@example.com")
        self.assertEqual(alice.phone, "+32470000001")
        self.assertEqual(alice.model_name, "res.partner")
        dan = by_res[self.dan.id]
        self.assertFalse(dan.email)
        self.assertEqual(dan.phone, "+32470000005")
        # the queue shows them too
        trace = alice.trace_ids
        self.assertEqual(
            (trace.record_name, trace.email, trace.phone),
            ("Alice Audience", "alice@example.com", "+32470000001"),
        )
        action = alice.action_open_record()
        self.assertEqual((action["res_model"], action["res_id"]), ("res.partner", self.alice.id))

    def test_dedup_on_unique_field(self):
        """With e-mail as unique field, addresses differing only by case are
        enrolled once (the oldest record represents them); records without a
        value, NULL or empty, are each enrolled."""
        no_mail_2, empty_1, empty_2 = self.env["res.partner"].create(
            [
                {"name": "Eve No-Mail", "email": False, "category_id": self.tag.ids},
                {"name": "Fay Empty", "email": "", "category_id": self.tag.ids},
                {"name": "Gus Empty", "email": "", "category_id": self.tag.ids},
            ]
        )
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            unique_field_id=self._email_field().id,
        )
        campaign.action_start()
        enrolled = self.env["res.partner"].browse(campaign.participant_ids.mapped("res_id"))
        self.assertEqual(
            enrolled,
            self.alice | self.bob | self.carol | self.dan | no_mail_2 | empty_1 | empty_2,
            "Alice Again (same e-mail as Alice, other case) is not enrolled",
        )
        keys = dict(
            zip(
                campaign.participant_ids.mapped("res_id"),
                campaign.participant_ids.mapped("unique_key"),
                strict=False,
            )
        )
        self.assertEqual(keys[self.alice.id], "alice@example.com")
        self.assertEqual(keys[self.dan.id], f"id:{self.dan.id}")
        self.assertEqual(keys[empty_1.id], f"id:{empty_1.id}")

        # a later duplicate is not enrolled either by the synchronisation
        self._new_contact("Bob Twin", "Bob@example.COM")
        self._run_sync()
        self.assertEqual(len(campaign.participant_ids), 7)

    def test_without_unique_field_duplicates_enrolled(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.action_start()
        self.assertIn(self.alice_dup.id, campaign.participant_ids.mapped("res_id"))

    def test_sync_enrols_new_matches_only(self):
        """With 'Enrol New Matches', the hourly synchronisation enrols records
        that started matching, and never re-enrols existing participants."""
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        first = campaign.participant_ids
        newcomer = self._new_contact()
        self.outsider.category_id = self.tag  # starts matching
        self._run_sync(T0 + timedelta(hours=1))
        new = campaign.participant_ids - first
        self.assertEqual(sorted(new.mapped("res_id")), sorted((newcomer | self.outsider).ids))
        self.assertEqual(len(steps["welcome"].trace_ids), 7)
        self.assertEqual(
            set(self._traces(steps["welcome"], newcomer).mapped("schedule_date")),
            {T0 + timedelta(hours=1)},
        )
        self.assertEqual(campaign.last_sync_date, T0 + timedelta(hours=1))
        # running it again changes nothing
        self._run_sync()
        self.assertEqual(len(campaign.participant_ids), 7)
        self.assertEqual(len(steps["welcome"].trace_ids), 7)

    def test_sync_frozen_audience(self):
        """Without 'Enrol New Matches', the audience is frozen at launch."""
        campaign, _steps = self._create_campaign([("welcome", {})], auto_entry=False)
        campaign.action_start()
        self._new_contact()
        self._run_sync()
        self.assertEqual(len(campaign.participant_ids), 5)

    def test_sync_ignores_stopped_campaigns(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.action_start()
        campaign.action_stop()
        self._new_contact()
        self._run_sync()
        self.assertEqual(len(campaign.participant_ids), 5)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"canceled"})

    def test_scheduled_start(self):
        """A campaign launched with a future start date enrols nobody until the
        synchronisation runs after that date."""
        start = T0 + timedelta(days=2)
        campaign, steps = self._create_campaign([("welcome", {})], schedule_date=start)
        self._launch(campaign)
        self.assertEqual(campaign.state, "running")
        self.assertFalse(campaign.participant_ids)
        trigger = self.env["ir.cron.trigger"].search(
            [
                ("cron_id", "=", self.env.ref("mkt_campaign.ir_cron_sync_participants").id),
                ("call_at", "=", start),
            ]
        )
        self.assertTrue(trigger, "the enrolment cron is planned for the start date")

        self._run_sync(start - timedelta(hours=1))
        self.assertFalse(campaign.participant_ids)

        self._run_sync(start + timedelta(minutes=1))
        self.assertEqual(len(campaign.participant_ids), 5)
        self.assertEqual(
            set(steps["welcome"].trace_ids.mapped("schedule_date")), {start + timedelta(minutes=1)}
        )

    def test_scheduled_start_frozen_audience(self):
        """A frozen audience (no 'Enrol New Matches') is taken at the start
        date, once, not at launch."""
        start = T0 + timedelta(days=2)
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            schedule_date=start,
            auto_entry=False,
        )
        self._launch(campaign)
        newcomer = self._new_contact()
        self._run_sync(start)
        self.assertEqual(len(campaign.participant_ids), 6)
        self.assertIn(newcomer.id, campaign.participant_ids.mapped("res_id"))
        self._new_contact("Late Larry", "larry@example.com")
        self._run_sync(start + timedelta(hours=1))
        self.assertEqual(len(campaign.participant_ids), 6)

    def test_model_name_on_create(self):
        """The external API creates campaigns with the technical model name."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Leads",
                "model_name": "crm.lead",
                "domain": "[]",
            }
        )
        self.assertEqual(campaign.model_id, self.env["ir.model"]._get("crm.lead"))
        self.assertEqual(campaign.model_name, "crm.lead")
        with self.assertRaisesRegex(ValidationError, "does not exist"):
            self.env["mkt.campaign"].create({"name": "Nope", "model_name": "no.such.model"})

    def test_target_crm_lead(self):
        """Leads are a target: their own e-mail/phone are kept, the filter
        applies on lead fields, and the e-mail step is rendered on the lead."""
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": "Big deal",
                    "email_from": "Lea <lea@example.com>",
                    "phone": "+32470111111",
                    "type": "opportunity",
                    "priority": "3",
                },
                {"name": "Small deal", "email_from": "sam@example.com", "priority": "0"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Hot leads",
                "model_name": "crm.lead",
                "domain": repr([("id", "in", leads.ids), ("priority", "=", "3")]),
                "unique_field_id": self._email_field("crm.lead", "email_from").id,
            }
        )
        step = self._add_step(campaign, "Call me back")
        self.assertEqual(step.mailing_id.mailing_model_real, "crm.lead")
        campaign.action_start()
        participant = campaign.participant_ids
        self.assertEqual(participant.res_id, leads[0].id)
        self.assertEqual(
            (participant.record_name, participant.email, participant.phone),
            ("Big deal", "Lea <lea@example.com>", "+32470111111"),
        )
        self._run_queue()
        trace = step.trace_ids
        self.assertEqual(trace.state, "processed")
        mtrace = self._mailing_trace(trace)
        self.assertEqual((mtrace.model, mtrace.res_id), ("crm.lead", leads[0].id))
        self.assertEqual(mtrace.mail_mail_id.subject, "Spring sale for Big deal")

    def test_target_pos_order(self):
        """POS orders are a target: the order's customer gives the contact
        columns, and orders are filtered on their own fields."""
        self.assertIn(
            self.env["ir.model"]._get("pos.order"),
            self.env["ir.model"].search([("is_mailing_enabled", "=", True)]),
            "POS orders are offered as a campaign target",
        )
        config = self.env["pos.config"].create({"name": "Spring shop"})
        session = self.env["pos.session"].create({"config_id": config.id, "user_id": self.env.uid})
        orders = self.env["pos.order"].create(
            [
                {
                    "session_id": session.id,
                    "partner_id": partner.id,
                    "amount_tax": 0,
                    "amount_total": total,
                    "amount_paid": total,
                    "amount_return": 0,
                }
                for partner, total in ((self.alice, 120), (self.bob, 15), (self.carol, 300))
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Big spenders",
                "model_name": "pos.order",
                "domain": repr([("session_id", "=", session.id), ("amount_total", ">=", 100)]),
            }
        )
        self._add_step(campaign, "Thank you")
        self.assertEqual(campaign.record_count, 2)
        campaign.action_start()
        by_res = {p.res_id: p for p in campaign.participant_ids}
        self.assertEqual(set(by_res), {orders[0].id, orders[2].id})
        self.assertEqual(by_res[orders[0].id].email, "alice@example.com")
        self.assertEqual(by_res[orders[2].id].email, "carol@example.com")
        self.assertEqual(by_res[orders[0].id].phone, "+32470000001")
        self.assertEqual(by_res[orders[0].id].record_name, orders[0].name)
