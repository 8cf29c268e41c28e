"""Who a campaign reaches: its filter, registration window, distribution
lists, previous campaigns, manual refinement, the live sample, enrolment of
new matches after launch, and the refusal of bad input."""

from datetime import timedelta

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, freeze_time, tagged
from odoo.tools import SQL

from .common import T0, MktCampaignCommon

D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestAudience(MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.belgium = cls.env.ref("base.be")
        cls.usa = cls.env.ref("base.us")
        cls.new_york = cls.env["res.country.state"].search(
            [("country_id", "=", cls.usa.id), ("code", "=", "NY")], limit=1
        )
        cls.salesman = cls.user_mkt_user
        cls.alice.write(
            {
                "country_id": cls.belgium.id,
                "user_id": cls.salesman.id,
                "category_id": [(4, cls.other_tag.id)],
            }
        )
        cls.bob.write({"country_id": cls.usa.id, "state_id": cls.new_york.id})
        cls.carol.write({"country_id": cls.usa.id, "category_id": [(4, cls.other_tag.id)]})

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def _matches(self, campaign):
        """The records the campaign's audience holds now."""
        return self.env[campaign.model_name].search(campaign._get_audience_domain())

    def _enrolled(self, campaign, is_test=False):
        participants = campaign.participant_ids.filtered(lambda p: p.is_test == is_test)
        return self.env[campaign.model_name].browse(participants.mapped("res_id"))

    def _running(self, campaign):
        participants = campaign.participant_ids.filtered(lambda p: p.state == "running")
        return self.env[campaign.model_name].browse(participants.mapped("res_id"))

    def _tagged(self, *domain):
        """A partner filter within the test audience (the tag)."""
        return repr([("category_id", "in", self.tag.ids), *domain])

    def _set_create_date(self, records, date):
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE %s SET create_date = %s WHERE id = ANY(%s)",
                SQL.identifier(records._table),
                date,
                records.ids,
            )
        )
        records.invalidate_recordset(["create_date"])

    def _mailing_list(self, name, subscriptions):
        """A distribution list; ``subscriptions``: (email, opted out) pairs, each a
        mailing list contact."""
        mailing_list = self.env["mailing.list"].create({"name": name})
        contacts = self.env["mailing.contact"]
        for email, opt_out in subscriptions:
            contact = self.env["mailing.contact"].search(
                [("email", "=", email)], limit=1
            ) or self.env["mailing.contact"].create({"name": email.split("@")[0], "email": email})
            self.env["mailing.subscription"].create(
                {
                    "contact_id": contact.id,
                    "list_id": mailing_list.id,
                    "opt_out": opt_out,
                }
            )
            contacts |= contact
        return mailing_list, contacts

    # ------------------------------------------------------------------
    # The filter: grouping and operators
    # ------------------------------------------------------------------

    def test_filter_and_or_grouping(self):
        """'|' and '&' group conditions as Odoo's domain editor writes them;
        launching enrols exactly the records the filter finds."""
        # (Alice or Bob) and has an e-mail, in the tag; plus anyone called Dan
        domain = repr(
            [
                ("category_id", "in", self.tag.ids),
                "|",
                "&",
                "|",
                ("name", "ilike", "alice"),
                ("name", "=", "Bob Buyer"),
                ("email", "=like", "%@example.com"),
                ("name", "=", "Dan No-Mail"),
            ]
        )
        campaign, _steps = self._create_campaign([("welcome", {})], domain=domain)
        # Alice Again's address is upper-case: =like is case-sensitive
        expected = self.alice | self.bob | self.dan
        self.assertEqual(self._matches(campaign), expected)
        self.assertEqual(campaign.record_count, 3)
        campaign.action_start()
        self.assertEqual(self._enrolled(campaign), expected)

        # default AND between consecutive conditions, OR across a nested group
        campaign2, _steps = self._create_campaign(
            [("welcome", {})],
            domain=repr(
                [
                    ("category_id", "in", self.tag.ids),
                    "|",
                    ("country_id", "=", self.usa.id),
                    ("user_id", "!=", False),
                    ("email", "!=", False),
                ]
            ),
        )
        self.assertEqual(self._matches(campaign2), self.alice | self.bob | self.carol)

    def test_filter_operators_own_fields(self):
        """Every operator of the filter editor on the contact's own fields."""
        self.alice.color, self.bob.color, self.alice_dup.color = 3, 7, 10
        campaign, _steps = self._create_campaign([("welcome", {})])
        cases = [
            (("name", "=", "Bob Buyer"), self.bob),
            (("name", "!=", "Bob Buyer"), self.partners - self.bob),
            (("color", ">", 3), self.bob | self.alice_dup),
            (("color", "<", 7), self.partners - self.bob - self.alice_dup),  # 0 counts
            (("color", ">=", 7), self.bob | self.alice_dup),
            (("color", "<=", 7), self.partners - self.alice_dup),
            (("name", "ilike", "ALICE"), self.alice | self.alice_dup),  # contains
            (("name", "not ilike", "alice"), self.bob | self.carol | self.dan),
            (("email", "=like", "alice%"), self.alice),  # starts with, case-sensitive
            (("email", "=ilike", "alice%"), self.alice | self.alice_dup),
            (("email", "!=", False), self.partners - self.dan),  # is set
            (("email", "=", False), self.dan),  # is not set
            (("name", "in", ["Bob Buyer", "Carol Customer"]), self.bob | self.carol),
            (
                ("name", "not in", ["Bob Buyer", "Carol Customer"]),
                self.alice | self.alice_dup | self.dan,
            ),
        ]
        for condition, expected in cases:
            with self.subTest(condition=condition):
                campaign.domain = self._tagged(condition)
                self.assertEqual(self._matches(campaign), expected)
                self.assertEqual(campaign.record_count, len(expected))

    def test_filter_operators_related_fields(self):
        """Tags, country, state and salesperson: by value, through the related
        record's fields, and set / not set."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        cases = [
            (("category_id", "in", self.other_tag.ids), self.alice | self.carol),
            (("category_id", "not in", self.other_tag.ids), self.bob | self.alice_dup | self.dan),
            (("category_id.name", "=", "VIP"), self.alice | self.carol),
            (("country_id", "=", self.usa.id), self.bob | self.carol),
            (("country_id.code", "=", "BE"), self.alice),
            (("country_id", "!=", False), self.alice | self.bob | self.carol),
            (("country_id", "=", False), self.alice_dup | self.dan),
            (("state_id", "=", self.new_york.id), self.bob),
            (("state_id.name", "ilike", "new y"), self.bob),
            (("state_id", "!=", False), self.bob),
            (("state_id", "=", False), self.partners - self.bob),
            (("user_id", "=", self.salesman.id), self.alice),
            (("user_id.name", "ilike", "ursula"), self.alice),
            (("user_id", "!=", False), self.alice),
            (("user_id", "=", False), self.partners - self.alice),
        ]
        for condition, expected in cases:
            with self.subTest(condition=condition):
                campaign.domain = self._tagged(condition)
                self.assertEqual(self._matches(campaign), expected)

    def test_filter_leads_by_stage(self):
        """Leads are filtered on their stage, their type and their revenue."""
        new_stage, won_stage = self.env["crm.stage"].create(
            [
                {"name": "Spring new", "sequence": 1},
                {"name": "Spring won", "sequence": 2, "is_won": True},
            ]
        )
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": "Lead new",
                    "email_from": "l1@example.com",
                    "type": "lead",
                    "stage_id": new_stage.id,
                    "expected_revenue": 100,
                },
                {
                    "name": "Opp new",
                    "email_from": "l2@example.com",
                    "type": "opportunity",
                    "stage_id": new_stage.id,
                    "expected_revenue": 5000,
                },
                {
                    "name": "Opp won",
                    "email_from": "l3@example.com",
                    "type": "opportunity",
                    "stage_id": won_stage.id,
                    "expected_revenue": 9000,
                },
            ]
        )
        lead_new, opp_new, opp_won = leads
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Leads",
                "model_name": "crm.lead",
                "domain": "[]",
            }
        )
        scope = ("id", "in", leads.ids)
        cases = [
            (("stage_id", "=", new_stage.id), lead_new | opp_new),
            (("stage_id", "!=", new_stage.id), opp_won),
            (("stage_id.is_won", "=", True), opp_won),
            (("stage_id.name", "ilike", "won"), opp_won),
            (("type", "=", "lead"), lead_new),
            (("expected_revenue", ">", 5000), opp_won),
            (("expected_revenue", ">=", 5000), opp_new | opp_won),
            (("expected_revenue", "<", 5000), lead_new),
        ]
        for condition, expected in cases:
            with self.subTest(condition=condition):
                campaign.domain = repr([scope, condition])
                self.assertEqual(self._matches(campaign), expected)

    def test_filter_pos_orders_by_state(self):
        """POS orders are filtered on their state."""
        config = self.env["pos.config"].create({"name": "Spring shop"})
        session = self.env["pos.session"].create({"config_id": config.id, "user_id": self.env.uid})
        orders = self.env["pos.order"].create(
            [
                {
                    "session_id": session.id,
                    "partner_id": partner.id,
                    "amount_tax": 0,
                    "amount_total": 10,
                    "amount_paid": 10,
                    "amount_return": 0,
                    "state": state,
                }
                for partner, state in (
                    (self.alice, "paid"),
                    (self.bob, "draft"),
                    (self.carol, "done"),
                )
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Paid orders",
                "model_name": "pos.order",
                "domain": repr(
                    [("session_id", "=", session.id), ("state", "in", ["paid", "done"])]
                ),
            }
        )
        self.assertEqual(self._matches(campaign), orders[0] | orders[2])
        campaign.domain = repr([("session_id", "=", session.id), ("state", "=", "draft")])
        self.assertEqual(self._matches(campaign), orders[1])

    # ------------------------------------------------------------------
    # Bad input
    # ------------------------------------------------------------------

    def test_bad_filter_refused(self):
        """A filter that names an unknown field, uses an unknown operator,
        compares with a value of the wrong type or does not parse is refused
        when saved, with a message naming the problem."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        cases = [
            (repr([("no_such_field", "=", 1)]), "no_such_field"),
            (repr([("name", "starts with", "A")]), "starts with"),
            (repr([("color", ">", "many")]), "many"),
            (repr([("create_date", ">=", "last week")]), "last week"),
            (repr([("email", "=like", 5)]), "pattern"),
            ("[('name', '=', 'Alice'", "invalid"),
        ]
        for domain, named in cases:
            with self.subTest(domain=domain):
                with self.assertRaises(ValidationError) as caught:
                    campaign.domain = domain
                message = str(caught.exception)
                self.assertIn("The filter of campaign Spring Sale is invalid", message)
                self.assertIn(named, message)
        with self.assertRaisesRegex(ValidationError, "no_such_field"):
            self.env["mkt.campaign"].create(
                {
                    "name": "Broken",
                    "model_name": "res.partner",
                    "domain": repr([("no_such_field", "=", 1)]),
                }
            )

    def test_negative_days_refused(self):
        """A negative registration window or re-entry cooldown is refused."""
        for fname in ("registered_days", "reentry_days"):
            with self.subTest(field=fname):
                with self.assertRaisesRegex(ValidationError, "cannot be negative"):
                    self._create_campaign(**{fname: -1})
        campaign, _steps = self._create_campaign()
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            campaign.registered_days = -7
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            campaign.reentry_days = -1

    # ------------------------------------------------------------------
    # Registration window
    # ------------------------------------------------------------------

    def test_registered_within_days(self):
        """'Registered within N days' keeps the records created in the last N
        days, counted from now; 0 means no limit."""
        self._set_create_date(self.alice, T0 - 2 * D)
        self._set_create_date(self.bob, T0 - 7 * D)  # the limit itself counts
        self._set_create_date(self.alice_dup | self.carol, T0 - 7 * D - timedelta(minutes=1))
        self._set_create_date(self.dan, T0 - 400 * D)
        campaign, _steps = self._create_campaign([("welcome", {})], registered_days=7)
        with freeze_time(T0):
            self.assertEqual(self._matches(campaign), self.alice | self.bob)
        # the window moves with time
        with freeze_time(T0 + 4 * D + timedelta(hours=1)):
            self.assertEqual(self._matches(campaign), self.alice)
        campaign.registered_days = 0
        with freeze_time(T0):
            self.assertEqual(self._matches(campaign), self.partners)
        campaign.registered_days = 7
        self._launch(campaign, T0)
        self.assertEqual(self._enrolled(campaign), self.alice | self.bob)

    # ------------------------------------------------------------------
    # Distribution lists
    # ------------------------------------------------------------------

    def test_distribution_lists_on_contacts(self):
        """Contacts whose address is subscribed to one of the lists, compared
        without case; opted-out subscriptions do not count."""
        newsletter, _contacts = self._mailing_list(
            "Spring newsletter",
            [
                ("Alice@EXAMPLE.com", False),  # matches Alice and Alice Again
                ("bob@example.com", False),
                ("carol@example.com", True),  # opted out
            ],
        )
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            mailing_list_ids=[(6, 0, newsletter.ids)],
        )
        self.assertEqual(self._matches(campaign), self.alice | self.alice_dup | self.bob)
        self.assertEqual(campaign.record_count, 3)

        # subscribed to another of the lists: Carol counts again
        vip_list, _contacts = self._mailing_list("VIP list", [("carol@example.com", False)])
        campaign.mailing_list_ids = [(4, vip_list.id)]
        self.assertEqual(
            self._matches(campaign), self.alice | self.alice_dup | self.bob | self.carol
        )

        # Bob opts out of the newsletter: he leaves the audience
        campaign.mailing_list_ids = [(3, vip_list.id)]
        bob_subscription = newsletter.subscription_ids.filtered(
            lambda s: s.contact_id.email == "bob@example.com"
        )
        bob_subscription.opt_out = True
        self.assertEqual(self._matches(campaign), self.alice | self.alice_dup)
        campaign.action_start()
        self.assertEqual(self._enrolled(campaign), self.alice | self.alice_dup)

    def test_distribution_lists_on_mailing_contacts(self):
        """A campaign on mailing list contacts enrols the list's subscribed contacts."""
        newsletter, (sub_1, sub_2, opted_out) = self._mailing_list(
            "Spring newsletter",
            [
                ("sub1@example.com", False),
                ("sub2@example.com", False),
                ("gone@example.com", True),
            ],
        )
        _other, (stranger,) = self._mailing_list("Other list", [("stranger@example.com", False)])
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Newsletter subscribers",
                "model_name": "mailing.contact",
                "domain": "[]",
                "mailing_list_ids": [(6, 0, newsletter.ids)],
            }
        )
        self.assertEqual(self._matches(campaign), sub_1 | sub_2)
        self.assertNotIn(opted_out, self._matches(campaign))
        self.assertNotIn(stranger, self._matches(campaign))
        self._add_step(campaign, "Welcome")
        campaign.action_start()
        self.assertEqual(self._enrolled(campaign), sub_1 | sub_2)
        self.assertEqual(
            set(campaign.participant_ids.mapped("email")), {"sub1@example.com", "sub2@example.com"}
        )

    def test_distribution_lists_on_leads(self):
        """Leads match a list by their own e-mail."""
        newsletter, _contacts = self._mailing_list("Lead list", [("LEA@example.com", False)])
        leads = self.env["crm.lead"].create(
            [
                {"name": "Lea's deal", "email_from": "Lea <lea@example.com>"},
                {"name": "Sam's deal", "email_from": "sam@example.com"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Listed leads",
                "model_name": "crm.lead",
                "domain": repr([("id", "in", leads.ids)]),
                "mailing_list_ids": [(6, 0, newsletter.ids)],
            }
        )
        self.assertEqual(self._matches(campaign), leads[0])

    # ------------------------------------------------------------------
    # Previous campaigns
    # ------------------------------------------------------------------

    def test_previous_campaigns(self):
        """In / not in a previous campaign, whatever they did or depending on
        whether they opened or clicked its messages (as tracking records it)."""
        spring, spring_steps = self._create_campaign(
            [("welcome", {})],
            domain=self._tagged(("id", "in", (self.alice | self.bob | self.carol | self.dan).ids)),
        )
        self._launch(spring)
        self._run_queue(T0)
        self._event(spring_steps["welcome"], self.alice, "open")
        self._event(spring_steps["welcome"], self.bob, "click")  # a click implies an open
        # test participants of the previous campaign never count
        self.env["mkt.participant"].create(
            {
                "campaign_id": spring.id,
                "res_id": self.alice_dup.id,
                "is_test": True,
                "unique_key": f"id:{self.alice_dup.id}",
                "state": "completed",
            }
        )

        summer, _steps = self._create_campaign([("welcome", {})], name="Summer Sale")
        cases = [
            ("in", "any", self.alice | self.bob | self.carol | self.dan),
            ("not_in", "any", self.alice_dup),
            ("in", "opened", self.alice | self.bob),
            ("in", "not_opened", self.carol | self.dan),
            ("in", "clicked", self.bob),
            ("in", "not_clicked", self.alice | self.carol | self.dan),
            ("not_in", "opened", self.alice_dup | self.carol | self.dan),
            ("not_in", "clicked", self.partners - self.bob),
        ]
        for condition, engagement, expected in cases:
            with self.subTest(condition=condition, engagement=engagement):
                summer.previous_ids = [
                    (5, 0, 0),
                    (
                        0,
                        0,
                        {
                            "condition": condition,
                            "engagement": engagement,
                            "previous_campaign_id": spring.id,
                        },
                    ),
                ]
                self.assertEqual(self._matches(summer), expected)
                self.assertEqual(summer.record_count, len(expected))

        # two conditions combine (AND): in Spring, and not in Autumn
        autumn, _steps = self._create_campaign(
            [("welcome", {})],
            name="Autumn",
            domain=self._tagged(("id", "=", self.carol.id)),
        )
        autumn.action_start()
        summer.previous_ids = [
            (5, 0, 0),
            (0, 0, {"condition": "in", "previous_campaign_id": spring.id}),
            (0, 0, {"condition": "not_in", "previous_campaign_id": autumn.id}),
        ]
        self.assertEqual(self._matches(summer), self.alice | self.bob | self.dan)
        summer.action_start()
        self.assertEqual(self._enrolled(summer), self.alice | self.bob | self.dan)

    def test_previous_campaign_other_target_refused(self):
        leads = self.env["mkt.campaign"].create({"name": "Leads", "model_name": "crm.lead"})
        campaign, _steps = self._create_campaign()
        with self.assertRaisesRegex(ValidationError, "cannot limit the audience"):
            campaign.previous_ids = [(0, 0, {"condition": "in", "previous_campaign_id": leads.id})]

    # ------------------------------------------------------------------
    # Manual refinement
    # ------------------------------------------------------------------

    def test_manual_include_and_exclude(self):
        """Records added by hand join the audience whatever the filter and
        lists; excluded ones leave it, also when they match."""
        newsletter, _contacts = self._mailing_list(
            "Spring newsletter",
            [
                ("alice@example.com", False),
                ("bob@example.com", False),
            ],
        )
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            mailing_list_ids=[(6, 0, newsletter.ids)],
        )
        self.assertEqual(self._matches(campaign), self.alice | self.alice_dup | self.bob)
        campaign.refinement_ids = [
            (0, 0, {"kind": "include", "res_id": self.outsider.id}),
            (0, 0, {"kind": "exclude", "res_id": self.alice_dup.id}),
        ]
        self.assertEqual(self._matches(campaign), self.alice | self.bob | self.outsider)
        self.assertEqual(campaign.record_count, 3)
        self.assertEqual(
            campaign.refinement_ids.mapped("record_name"), ["Oscar Outsider", "Alice Again"]
        )
        campaign.action_start()
        self.assertEqual(self._enrolled(campaign), self.alice | self.bob | self.outsider)

    def test_refinement_in_form(self):
        """In the campaign form, a record picked in the refinement list is
        included or excluded, and the count and sample follow at once."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        with Form(campaign) as form:
            self.assertEqual(form.record_count, 5)
            with form.refinement_ids.new() as line:
                line.kind = "exclude"
                line.record_ref = f"res.partner,{self.bob.id}"
            with form.refinement_ids.new() as line:
                line.kind = "include"
                line.record_ref = f"res.partner,{self.outsider.id}"
            self.assertEqual(form.record_count, 5)
            self.assertNotIn("Bob Buyer", form.sample_html)
            self.assertIn("Oscar Outsider", form.sample_html)
        self.assertEqual(
            {(r.kind, r.res_id) for r in campaign.refinement_ids},
            {("exclude", self.bob.id), ("include", self.outsider.id)},
        )
        self.assertEqual(self._matches(campaign), self.partners - self.bob + self.outsider)

        lead = self.env["crm.lead"].create({"name": "Not a contact"})
        with self.assertRaisesRegex(ValidationError, "not a record of the campaign's target"):
            campaign.refinement_ids = [(0, 0, {"kind": "include", "record_ref": lead})]

    def test_exclusions_hold_across_sync_and_relaunch(self):
        """A record excluded by hand, or a participant taken out of the
        campaign, never comes back: not by the synchronisation, not when the
        re-entry cooldown has passed, not when the campaign is relaunched."""
        campaign, steps = self._create_campaign(
            [("welcome", {"interval_number": 1, "interval_type": "days"})],
            reentry_days=1,
        )
        campaign.refinement_ids = [(0, 0, {"kind": "exclude", "res_id": self.carol.id})]
        self._launch(campaign)
        self.assertEqual(self._enrolled(campaign), self.partners - self.carol)

        bob = campaign.participant_ids.filtered(lambda p: p.res_id == self.bob.id)
        with freeze_time(T0 + timedelta(hours=1)):
            bob.action_exclude()
        self.env.invalidate_all()
        self.assertEqual(bob.state, "canceled")
        self.assertEqual(bob.end_date, T0 + timedelta(hours=1))
        self.assertEqual(bob.trace_ids.state, "canceled")
        self.assertIn("Excluded from the campaign", bob.trace_ids.error_message)
        self.assertEqual(
            {(r.kind, r.res_id) for r in campaign.refinement_ids},
            {("exclude", self.carol.id), ("exclude", self.bob.id)},
        )
        self.assertNotIn(self.bob, self._matches(campaign))

        # re-synchronised well after the cooldown: neither comes back
        self._run_sync(T0 + 5 * D)
        self.assertEqual(self._running(campaign), self.partners - self.carol - self.bob)
        self.assertEqual(len(campaign.participant_ids), 4)

        # stopped, reset to draft and relaunched after the cooldown: the
        # canceled participants re-enter, the excluded ones do not
        with freeze_time(T0 + 6 * D):
            campaign.action_stop()
            campaign.action_draft()
        self._launch(campaign, T0 + 8 * D)
        self.assertEqual(self._running(campaign), self.partners - self.carol - self.bob)
        self.assertFalse(
            campaign.participant_ids.filtered(
                lambda p: p.res_id in (self.bob | self.carol).ids and p.state == "running"
            )
        )
        self.assertFalse(self._traces(steps["welcome"], self.bob | self.carol, state="scheduled"))

    def test_exclude_included_record(self):
        """Excluding a participant that was added by hand turns its line into
        an exclusion (a record is included or excluded, once)."""
        campaign, _steps = self._create_campaign([("welcome", {"interval_number": 1})])
        campaign.refinement_ids = [(0, 0, {"kind": "include", "res_id": self.outsider.id})]
        campaign.action_start()
        outsider = campaign.participant_ids.filtered(lambda p: p.res_id == self.outsider.id)
        self.assertTrue(outsider)
        (
            outsider | campaign.participant_ids.filtered(lambda p: p.res_id == self.dan.id)
        ).action_exclude()
        self.assertEqual(
            {(r.kind, r.res_id) for r in campaign.refinement_ids},
            {("exclude", self.outsider.id), ("exclude", self.dan.id)},
        )
        self.assertEqual(self._matches(campaign), self.partners - self.dan)

    def test_exclude_requires_campaign_user(self):
        campaign, _steps = self._create_campaign([("welcome", {"interval_number": 1})])
        campaign.action_start()
        participant = campaign.participant_ids[0]
        with self.assertRaises(AccessError):
            participant.with_user(self.user_internal).action_exclude()
        self.assertEqual(participant.state, "running")
        participant.with_user(self.user_mkt_user).action_exclude()
        self.env.invalidate_all()
        self.assertEqual(participant.state, "canceled")

    # ------------------------------------------------------------------
    # Enrolment after launch
    # ------------------------------------------------------------------

    def test_dynamic_entry_through_lists(self):
        """With 'Enrol New Matches', a contact that joins the audience after the
        launch (a new contact, a new subscription) is enrolled by the
        synchronisation cron; without it, the audience is the launch's."""
        newsletter, _contacts = self._mailing_list(
            "Spring newsletter", [("alice@example.com", False)]
        )
        live, live_steps = self._create_campaign(
            [("welcome", {})],
            name="Live",
            mailing_list_ids=[(6, 0, newsletter.ids)],
        )
        frozen, _steps = self._create_campaign(
            [("welcome", {})],
            name="Frozen",
            mailing_list_ids=[(6, 0, newsletter.ids)],
            auto_entry=False,
        )
        self._launch(live | frozen)
        listed = self.alice | self.alice_dup  # Alice Again shares Alice's address
        self.assertEqual(self._enrolled(live), listed)
        self.assertEqual(self._enrolled(frozen), listed)

        nina = self._new_contact("Nina Newcomer", "nina@example.com")
        self.env["mailing.contact"].create(
            {
                "name": "Nina",
                "email": "NINA@example.com",
                "list_ids": [(4, newsletter.id)],
            }
        )
        self.env["mailing.contact"].create(
            {
                "name": "Bob",
                "email": "bob@example.com",
                "list_ids": [(4, newsletter.id)],
            }
        )
        self._run_sync(T0 + timedelta(hours=1))
        self.assertEqual(self._enrolled(live), listed | nina | self.bob)
        self.assertEqual(
            set(self._traces(live_steps["welcome"], nina | self.bob).mapped("schedule_date")),
            {T0 + timedelta(hours=1)},
        )
        self.assertEqual(self._enrolled(frozen), listed)

    # ------------------------------------------------------------------
    # Live count and sample
    # ------------------------------------------------------------------

    def test_count_and_sample_follow_filter(self):
        """The matching count and the sample of names follow the filter, the
        lists and the refinement; the sample shows at most 10 names, escaped."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        self.assertEqual(campaign.record_count, 5)
        for partner in self.partners:
            self.assertIn(partner.name, campaign.sample_html)
        self.assertNotIn("Oscar Outsider", campaign.sample_html)

        campaign.domain = self._tagged(("name", "ilike", "alice"))
        self.assertEqual(campaign.record_count, 2)
        self.assertIn("Alice Again", campaign.sample_html)
        self.assertNotIn("Bob Buyer", campaign.sample_html)

        campaign.domain = self._tagged(("name", "=", "Nobody"))
        self.assertEqual(campaign.record_count, 0)
        self.assertIn("No record matches.", campaign.sample_html)

        many = self.env["res.partner"].create(
            [
                {
                    "name": f"Many {n:02d}",
                    "email": f"many{n}@example.com",
                    "category_id": self.tag.ids,
                }
                for n in range(12)
            ]
            + [{"name": "<b>Bold</b> & co", "category_id": self.tag.ids}]
        )
        campaign.domain = self._tagged(("id", "in", many.ids))
        self.assertEqual(campaign.record_count, 13)
        self.assertEqual(campaign.sample_html.count("<li>"), 10)
        campaign.domain = self._tagged(("name", "ilike", "bold"))
        self.assertIn("&lt;b&gt;Bold&lt;/b&gt; &amp; co", campaign.sample_html)
        self.assertNotIn("<b>Bold", campaign.sample_html)

    def test_count_and_sample_while_editing(self):
        """In the form, an invalid filter being typed shows the error in the
        sample rather than breaking the form."""
        with Form(self.env["mkt.campaign"]) as form:
            form.name = "Draft campaign"
            form.domain = self._tagged()
            self.assertEqual(form.record_count, 5)
            self.assertIn("Bob Buyer", form.sample_html)
            form.domain = "[('no_such_field', '=', 1)]"
            self.assertEqual(form.record_count, 0)
            self.assertIn("no_such_field", form.sample_html)
            form.domain = self._tagged(("email", "=", False))
            self.assertEqual(form.record_count, 1)
            self.assertIn("Dan No-Mail", form.sample_html)

    # ------------------------------------------------------------------
    # One-click audiences
    # ------------------------------------------------------------------

    def test_onchange_audience_leads(self):
        with Form(self.env["mkt.campaign"]) as form:
            form.name = "Leads"
            form.audience = "leads"
            self.assertEqual(form.model_id, self.env["ir.model"]._get("crm.lead"))
            self.assertEqual(form.domain, "[('type', '=', 'lead')]")
        campaign = form.record
        lead = self.env["crm.lead"].create({"name": "A lead", "type": "lead"})
        opportunity = self.env["crm.lead"].create({"name": "An opp", "type": "opportunity"})
        matches = self._matches(campaign)
        self.assertIn(lead, matches)
        self.assertNotIn(opportunity, matches)

    def test_onchange_audience_customers(self):
        if "mkt_is_customer" not in self.env["res.partner"]._fields:
            self.skipTest(
                "res.partner.mkt_is_customer does not exist yet (being added in "
                "models/res_partner.py): the Customers audience cannot be checked"
            )
        product = self.env["product.product"].create({"name": "Spring flowers", "list_price": 10})
        order = self.env["sale.order"].create(
            {
                "partner_id": self.bob.id,
                "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
            }
        )
        order.action_confirm()
        self.env["sale.order"].create(
            {  # a quotation makes no customer
                "partner_id": self.carol.id,
                "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
            }
        )
        config = self.env["pos.config"].create({"name": "Spring shop"})
        session = self.env["pos.session"].create({"config_id": config.id, "user_id": self.env.uid})
        self.env["pos.order"].create(
            {
                "session_id": session.id,
                "partner_id": self.alice.id,
                "amount_tax": 0,
                "amount_total": 10,
                "amount_paid": 10,
                "amount_return": 0,
                "state": "paid",
            }
        )
        with Form(self.env["mkt.campaign"]) as form:
            form.name = "Customers"
            form.audience = "leads"
            form.audience = "customers"
            self.assertEqual(form.model_id, self.env["ir.model"]._get("res.partner"))
            self.assertEqual(form.domain, "[('mkt_is_customer', '=', True)]")
        matches = self._matches(form.record)
        self.assertIn(self.bob, matches, "a confirmed sale order makes a customer")
        self.assertIn(self.alice, matches, "a paid POS order makes a customer")
        self.assertNotIn(self.carol, matches)
        self.assertNotIn(self.dan, matches)
