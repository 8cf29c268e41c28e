"""Rules every campaign message obeys, whatever the campaign: frequency caps
across campaigns, the sending window in the recipient's time zone, consent
(blacklist, opt-out, double opt-in), and the settings that configure them."""

from datetime import datetime, timedelta

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
D = timedelta(days=1)
MIN = timedelta(minutes=1)
PARAMS = {
    "cap_all": "0",
    "cap_all_period": "week",
    "cap_email": "0",
    "cap_email_period": "week",
    "cap_sms": "0",
    "cap_sms_period": "week",
    "quiet_hours": False,
    "quiet_hour_from": "9.0",
    "quiet_hour_to": "20.0",
    "quiet_weekdays": "0,1,2,3,4",
}


@tagged("post_install", "-at_install", "mkt_campaign")
class TestSendingRules(MktCampaignCommon):
    def setUp(self):
        super().setUp()
        self._set_params(**PARAMS)

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------

    def _set_params(self, **values):
        Params = self.env["ir.config_parameter"].sudo()
        for key, value in values.items():
            Params.set_param(f"mkt_campaign.{key}", value)

    def _campaign(self, name, partners, steps=(("welcome", {}),), **values):
        campaign, activities = self._create_campaign(
            list(steps), name=name, domain=repr([("id", "in", partners.ids)]), **values
        )
        return campaign, activities

    def _trace(self, activity, record):
        trace = activity.trace_ids.filtered(lambda t: t.res_id == record.id)
        self.assertEqual(len(trace), 1)
        return trace

    def _states(self, activity):
        return {t.record_name: t.state for t in activity.trace_ids}

    def _mailing_contacts(self, list_name, emails):
        mailing_list = self.env["mailing.list"].create({"name": list_name})
        contacts = self.env["mailing.contact"].create(
            [
                {
                    "name": email.split("@")[0].capitalize(),
                    "email": email,
                    "list_ids": [(4, mailing_list.id)],
                }
                for email in emails
            ]
        )
        return mailing_list, contacts

    # ------------------------------------------------------------------
    # Frequency caps
    # ------------------------------------------------------------------

    def test_cap_all_channels_across_campaigns(self):
        """At most one message a day per contact, all channels and campaigns
        together: the message over the cap waits, scheduled for the moment the
        cap allows it, with the reason, and goes out then."""
        self._set_params(cap_all="1", cap_all_period="day")
        spring, spring_steps = self._campaign("Spring", self.alice | self.bob)
        self._launch(spring)
        self._run_queue(T0)
        self.assertEqual(
            self._states(spring_steps["welcome"]),
            {"Alice Audience": "processed", "Bob Buyer": "processed"},
        )

        summer, summer_steps = self._campaign(
            "Summer",
            self.alice | self.carol,
            steps=[("sms", {"activity_type": "sms"})],
        )
        self._launch(summer, T0 + 2 * H)
        self._run_queue(T0 + 2 * H)
        alice = self._trace(summer_steps["sms"], self.alice)
        self.assertEqual(self._trace(summer_steps["sms"], self.carol).state, "processed")
        self.assertEqual(alice.state, "scheduled")
        self.assertEqual(alice.schedule_date, T0 + D, "when Spring's e-mail is a day old")
        self.assertEqual(
            alice.error_message,
            "Postponed: frequency cap reached (all channels: at most 1 per day).",
        )
        self.assertEqual(alice.attempts, 0, "a postponement is no attempt")
        self.assertEqual(alice.participant_id.state, "running")
        self.assertFalse(alice.mailing_trace_ids, "no SMS was generated")

        self._run_queue(T0 + D - MIN)
        self.assertEqual(alice.state, "scheduled")
        self._run_queue(T0 + D)
        self.assertEqual(alice.state, "processed")
        self.assertFalse(alice.error_message, "the reason to wait is gone once sent")
        self.assertEqual(alice.attempts, 1)
        self.assertEqual(alice.participant_id.state, "completed")
        self.assertEqual(len(alice.mailing_trace_ids), 1)

    def test_cap_per_channel(self):
        """A per-channel cap counts that channel only: with one e-mail a week,
        an SMS still goes out; with one SMS a day, a second SMS waits a day."""
        self._set_params(cap_email="1", cap_email_period="week", cap_sms="1", cap_sms_period="day")
        spring, _steps = self._campaign("Spring", self.alice)
        self._launch(spring)
        self._run_queue(T0)

        summer, steps = self._campaign(
            "Summer",
            self.alice,
            steps=[
                ("email", {}),
                ("sms", {"activity_type": "sms"}),
            ],
        )
        self._launch(summer, T0 + H)
        self._run_queue(T0 + H)
        email, sms = self._trace(steps["email"], self.alice), self._trace(steps["sms"], self.alice)
        self.assertEqual(sms.state, "processed")
        self.assertEqual((email.state, email.schedule_date), ("scheduled", T0 + 7 * D))
        self.assertEqual(
            email.error_message, "Postponed: frequency cap reached (e-mail: at most 1 per week)."
        )

        autumn, autumn_steps = self._campaign(
            "Autumn",
            self.alice,
            steps=[("sms", {"activity_type": "sms"})],
        )
        self._launch(autumn, T0 + 2 * H)
        self._run_queue(T0 + 2 * H)
        second_sms = self._trace(autumn_steps["sms"], self.alice)
        self.assertEqual((second_sms.state, second_sms.schedule_date), ("scheduled", T0 + H + D))
        self.assertEqual(
            second_sms.error_message, "Postponed: frequency cap reached (SMS: at most 1 per day)."
        )
        self._run_queue(T0 + H + D)
        self.assertEqual(second_sms.state, "processed")
        self.assertEqual(email.state, "scheduled")
        self._run_queue(T0 + 7 * D)
        self.assertEqual(email.state, "processed")

    def test_cap_counts_the_limit_th_newest(self):
        """With two messages a week, a third waits until the older of the two
        leaves the rolling week; the strictest cap decides."""
        self._set_params(cap_all="2", cap_all_period="week", cap_email="5")
        for day, name in ((0, "One"), (1, "Two")):
            campaign, _steps = self._campaign(name, self.bob)
            self._launch(campaign, T0 + day * D)
            self._run_queue(T0 + day * D)
        third, steps = self._campaign("Three", self.bob)
        self._launch(third, T0 + 2 * D)
        self._run_queue(T0 + 2 * D)
        trace = self._trace(steps["welcome"], self.bob)
        self.assertEqual((trace.state, trace.schedule_date), ("scheduled", T0 + 7 * D))
        self.assertIn("all channels: at most 2 per week", trace.error_message)
        self._run_queue(T0 + 7 * D)
        self.assertEqual(trace.state, "processed")

    def test_cap_same_address_is_one_contact(self):
        """Two contact cards with the same address are one recipient for the
        cap, also within the same batch; test runs never count."""
        self._set_params(cap_email="1", cap_email_period="day")
        trial, _steps = self._campaign("Trial", self.alice, mode="test")
        self._launch(trial)
        self.assertTrue(trial.participant_ids.trace_ids, "the test run produced its queue")

        campaign, steps = self._campaign("Spring", self.alice | self.alice_dup)
        self._launch(campaign)
        self._run_queue(T0)
        first, second = steps["welcome"].trace_ids.sorted("id")
        self.assertEqual(first.state, "processed")
        self.assertEqual((second.state, second.schedule_date), ("scheduled", T0 + D))

    def test_cap_same_phone_written_two_ways(self):
        """The same mobile number written two ways (national with spaces,
        international) is one person for the cap."""
        self._set_params(cap_sms="1", cap_sms_period="day")
        belgium = self.env.ref("base.be")
        twins = self.env["res.partner"].create(
            [
                {
                    "name": "Hal Local",
                    "email": "",
                    "phone": "0470 00 00 21",
                    "country_id": belgium.id,
                },
                {
                    "name": "Hal Intl",
                    "email": "",
                    "phone": "+32 470 000 021",
                    "country_id": belgium.id,
                },
            ]
        )
        campaign, steps = self._campaign(
            "SMS twins",
            twins,
            steps=[("sms", {"activity_type": "sms"})],
        )
        self._launch(campaign)
        self.assertEqual(set(campaign.participant_ids.mapped("phone")), {"+32470000021"})
        self._run_queue(T0)
        self.assertEqual(sorted(steps["sms"].trace_ids.mapped("state")), ["processed", "scheduled"])

    def test_cap_contact_key(self):
        """The cap counts per person: an empty address is no address (the
        phone tells contacts apart), and a lead's formatted address is the
        same person as the contact with that address."""
        self._set_params(cap_all="1", cap_all_period="day")
        no_mail = self.env["res.partner"].create(
            [
                {"name": "Fay Empty", "email": "", "phone": "+32470000011"},
                {"name": "Gus Empty", "email": "", "phone": "+32470000012"},
            ]
        )
        campaign, steps = self._campaign(
            "SMS only",
            no_mail,
            steps=[("sms", {"activity_type": "sms"})],
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(steps["sms"].trace_ids.mapped("state")), {"processed"})

        lead = self.env["crm.lead"].create(
            {"name": "Bob's deal", "email_from": "Bob <BOB@example.com>"}
        )
        leads = self.env["mkt.campaign"].create(
            {
                "name": "Leads",
                "model_name": "crm.lead",
                "domain": repr([("id", "=", lead.id)]),
            }
        )
        lead_step = self._add_step(leads, "lead welcome")
        contacts, contact_steps = self._campaign("Contacts", self.bob)
        self._launch(contacts | leads)
        self._run_queue(T0)
        traces = self._trace(contact_steps["welcome"], self.bob) | self._trace(lead_step, lead)
        self.assertEqual(sorted(traces.mapped("state")), ["processed", "scheduled"])

    # ------------------------------------------------------------------
    # Sending window
    # ------------------------------------------------------------------

    def test_sending_window_in_recipient_time_zone(self):
        """Messages leave between 9:00 and 20:00 in the recipient's time zone
        (the contact's, else the company's); the others wait for the opening."""
        self._set_params(quiet_hours="True", quiet_hour_from="9.0", quiet_hour_to="20.0")
        self.alice.tz = "Europe/Brussels"  # T0 (Monday 09:00 UTC) is 10:00 there
        self.bob.tz = "America/New_York"  # 04:00 there
        self.carol.tz = False
        self.env.company.partner_id.tz = "Pacific/Auckland"  # 22:00 there
        campaign, steps = self._campaign("Spring", self.alice | self.bob | self.carol)
        self._launch(campaign)
        self._run_queue(T0)
        welcome = steps["welcome"]
        alice, bob, carol = (self._trace(welcome, p) for p in (self.alice, self.bob, self.carol))
        self.assertEqual(alice.state, "processed")
        self.assertEqual((bob.state, bob.schedule_date), ("scheduled", datetime(2026, 3, 2, 14, 0)))
        self.assertEqual(
            bob.error_message, "Waiting for the sending window (09:00–20:00, America/New_York)."
        )
        self.assertEqual(bob.attempts, 0)
        # Tuesday 09:00 in Auckland (UTC+13) is Monday 20:00 UTC
        self.assertEqual(
            (carol.state, carol.schedule_date), ("scheduled", datetime(2026, 3, 2, 20, 0))
        )
        self.assertIn("Pacific/Auckland", carol.error_message)
        self.assertFalse(bob.mailing_trace_ids | carol.mailing_trace_ids)

        self._run_queue(datetime(2026, 3, 2, 14, 0))
        self.assertEqual((bob.state, carol.state), ("processed", "scheduled"))
        self._run_queue(datetime(2026, 3, 2, 20, 0))
        self.assertEqual(carol.state, "processed")

    def test_sending_window_skips_excluded_weekdays(self):
        """On a day left out of the window (the weekend), messages wait for the
        next allowed day's opening, each in its own time zone, daylight saving
        time included (New York moves to UTC-4 on Sunday 8 March 2026)."""
        self._set_params(
            quiet_hours="True",
            quiet_hour_from="9.0",
            quiet_hour_to="20.0",
            quiet_weekdays="0,1,2,3,4",
        )
        self.alice.tz = "Europe/Brussels"
        self.bob.tz = "America/New_York"
        saturday = datetime(2026, 3, 7, 15, 0)  # 16:00 in Brussels, 10:00 in New York
        campaign, steps = self._campaign("Weekend", self.alice | self.bob)
        self._launch(campaign, saturday)
        self._run_queue(saturday)
        alice, bob = (self._trace(steps["welcome"], p) for p in (self.alice, self.bob))
        self.assertEqual(
            (alice.state, alice.schedule_date), ("scheduled", datetime(2026, 3, 9, 8, 0))
        )
        self.assertEqual((bob.state, bob.schedule_date), ("scheduled", datetime(2026, 3, 9, 13, 0)))

        self._run_queue(datetime(2026, 3, 9, 8, 0))
        self.assertEqual((alice.state, bob.state), ("processed", "scheduled"))
        self._run_queue(datetime(2026, 3, 9, 13, 0))
        self.assertEqual(bob.state, "processed")

        # with Saturday allowed, both are inside the window right away
        self._set_params(quiet_weekdays="0,1,2,3,4,5")
        campaign2, steps2 = self._campaign("Weekend too", self.alice | self.bob)
        self._launch(campaign2, saturday)
        self._run_queue(saturday)
        self.assertEqual(set(steps2["welcome"].trace_ids.mapped("state")), {"processed"})

    def test_sending_window_end_is_exclusive(self):
        """At the closing hour the window is closed: next opening the next day."""
        self._set_params(quiet_hours="True", quiet_hour_from="8.5", quiet_hour_to="18.0")
        self.alice.tz = "UTC"
        campaign, steps = self._campaign("Evening", self.alice)
        self._launch(campaign, T0.replace(hour=18))
        self._run_queue(T0.replace(hour=18))
        trace = self._trace(steps["welcome"], self.alice)
        self.assertEqual(
            (trace.state, trace.schedule_date), ("scheduled", datetime(2026, 3, 3, 8, 30))
        )
        self.assertEqual(trace.error_message, "Waiting for the sending window (08:30–18:00, UTC).")

    # ------------------------------------------------------------------
    # Consent
    # ------------------------------------------------------------------

    def test_blacklisted_email_rejected(self):
        self.env["mail.blacklist"].sudo()._add("BOB@example.com")
        campaign, steps = self._campaign("Spring", self.alice | self.bob)
        self._launch(campaign)
        self._run_queue(T0)
        bob = self._trace(steps["welcome"], self.bob)
        self.assertEqual(self._trace(steps["welcome"], self.alice).state, "processed")
        self.assertEqual(bob.state, "rejected")
        self.assertEqual(bob.error_message, "Blacklisted Address")
        self.assertEqual(bob.mailing_trace_ids.failure_type, "mail_bl")
        self.assertNotIn("bob@example.com", str([m["email_to"] for m in self._mails]))

    def test_blacklisted_phone_rejected(self):
        self.env["phone.blacklist"].sudo().add("+32470000002")
        campaign, steps = self._campaign(
            "Spring SMS",
            self.alice | self.bob,
            steps=[("sms", {"activity_type": "sms"})],
        )
        self._launch(campaign)
        self._run_queue(T0)
        bob = self._trace(steps["sms"], self.bob)
        self.assertEqual(self._trace(steps["sms"], self.alice).state, "processed")
        self.assertEqual(bob.state, "rejected")
        self.assertEqual(bob.mailing_trace_ids.failure_type, "sms_blacklist")
        self.assertIn("Blacklist", bob.error_message)

    def test_opted_out_of_campaign_list_rejected(self):
        """A list contact that opts out of the campaign's list after being
        enrolled does not receive the message: the step is rejected."""
        newsletter, (keen, leaving) = self._mailing_contacts(
            "Newsletter", ["keen@example.com", "leaving@example.com"]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Newsletter",
                "model_name": "mailing.contact",
                "domain": "[]",
                "mailing_list_ids": [(6, 0, newsletter.ids)],
            }
        )
        welcome = self._add_step(campaign, "welcome")
        self._launch(campaign)
        self.assertEqual(len(campaign.participant_ids), 2)
        leaving.subscription_ids.opt_out = True
        self._run_queue(T0)
        self.assertEqual(self._trace(welcome, keen).state, "processed")
        trace = self._trace(welcome, leaving)
        self.assertEqual(trace.state, "rejected")
        self.assertEqual(trace.error_message, "Opted Out")

    def test_opted_out_contact_rejected_on_partners(self):
        """A contact reached through a distribution list (matched by address)
        that opts out of that list is not written to anymore."""
        newsletter, (_alice_contact, bob_contact) = self._mailing_contacts(
            "Newsletter", ["alice@example.com", "bob@example.com"]
        )
        campaign, steps = self._campaign(
            "Listed",
            self.alice | self.bob,
            steps=[
                ("welcome", {}),
                ("again", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
                (
                    "sms",
                    {
                        "parent": "welcome",
                        "interval_number": 1,
                        "interval_type": "days",
                        "activity_type": "sms",
                    },
                ),
            ],
            mailing_list_ids=[(6, 0, newsletter.ids)],
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._trace(steps["welcome"], self.bob).state, "processed")
        bob_contact.subscription_ids.opt_out = True
        self._run_queue(T0 + D)
        again = self._trace(steps["again"], self.bob)
        self.assertEqual((again.state, again.error_message), ("rejected", "Opted Out"))
        sms = self._trace(steps["sms"], self.bob)
        self.assertEqual(
            (sms.state, sms.mailing_trace_ids.failure_type), ("rejected", "sms_optout")
        )
        # Alice stays subscribed
        self.assertEqual(self._trace(steps["again"], self.alice).state, "processed")
        self.assertEqual(self._trace(steps["sms"], self.alice).state, "processed")

    def test_opted_out_sms_rejected(self):
        newsletter, (keen, leaving) = self._mailing_contacts(
            "SMS club", ["keen@example.com", "leaving@example.com"]
        )
        keen.mobile, leaving.mobile = "+32470999001", "+32470999002"
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "SMS club",
                "model_name": "mailing.contact",
                "domain": "[]",
                "mailing_list_ids": [(6, 0, newsletter.ids)],
            }
        )
        sms = self._add_step(campaign, "sms", activity_type="sms")
        self._launch(campaign)
        leaving.subscription_ids.opt_out = True
        self._run_queue(T0)
        self.assertEqual(self._trace(sms, keen).state, "processed")
        trace = self._trace(sms, leaving)
        self.assertEqual(trace.state, "rejected")
        self.assertEqual(trace.mailing_trace_ids.failure_type, "sms_optout")

    def test_require_confirmed_optin(self):
        """With 'Require Confirmed Opt-in', only contacts who confirmed their
        subscription receive messages; the others' steps are rejected."""
        newsletter, (confirmed, unconfirmed) = self._mailing_contacts(
            "Double opt-in", ["confirmed@example.com", "pending@example.com"]
        )
        confirmed.mkt_optin_date = T0 - D
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Confirmed only",
                "model_name": "mailing.contact",
                "domain": "[]",
                "mailing_list_ids": [(6, 0, newsletter.ids)],
                "require_optin": True,
            }
        )
        welcome = self._add_step(campaign, "welcome")
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._trace(welcome, confirmed).state, "processed")
        trace = self._trace(welcome, unconfirmed)
        self.assertEqual(trace.state, "rejected")
        self.assertIn("No confirmed opt-in", trace.error_message)
        self.assertFalse(trace.mailing_trace_ids)

        # without the option, both are written to
        campaign2 = campaign.copy({"name": "Everyone", "require_optin": False})
        self._launch(campaign2)
        self._run_queue(T0)
        self.assertEqual(set(campaign2.activity_ids.trace_ids.mapped("state")), {"processed"})

    def test_require_optin_on_leads(self):
        """Leads answer for their contact's opt-in; a lead without a confirmed
        contact is rejected, the queue is not broken."""
        partner_has_optin = "mkt_optin_date" in self.env["res.partner"]._fields
        if partner_has_optin:
            self.alice.mkt_optin_date = T0 - D
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": "Alice's deal",
                    "partner_id": self.alice.id,
                    "email_from": "alice@example.com",
                },
                {"name": "Bob's deal", "partner_id": self.bob.id, "email_from": "bob@example.com"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Leads",
                "model_name": "crm.lead",
                "domain": repr([("id", "in", leads.ids)]),
                "require_optin": True,
            }
        )
        welcome = self._add_step(campaign, "welcome")
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(self._trace(welcome, leads[1]).state, "rejected")
        self.assertEqual(
            self._trace(welcome, leads[0]).state, "processed" if partner_has_optin else "rejected"
        )

    # ------------------------------------------------------------------
    # Settings
    # ------------------------------------------------------------------

    def test_settings_saved_and_applied(self):
        """What the settings screen saves is what the queue applies."""
        self.env["res.config.settings"].create(
            {
                "mkt_cap_all": 3,
                "mkt_cap_all_period": "day",
                "mkt_cap_email": 2,
                "mkt_cap_sms": 0,
                "mkt_quiet_hours": True,
                "mkt_quiet_hour_from": 8.5,
                "mkt_quiet_hour_to": 19.0,
                "mkt_quiet_mon": True,
                "mkt_quiet_tue": False,
                "mkt_quiet_wed": True,
                "mkt_quiet_thu": False,
                "mkt_quiet_fri": True,
                "mkt_quiet_sat": False,
                "mkt_quiet_sun": True,
            }
        ).execute()
        settings = self.env["mkt.sending.policy"]._get_settings()
        self.assertEqual(settings["caps"][None], (3, "day"))
        self.assertEqual(settings["caps"]["email"], (2, "week"))
        self.assertEqual(settings["caps"]["sms"][0], 0)
        self.assertTrue(settings["quiet_hours"])
        self.assertEqual((settings["hour_from"], settings["hour_to"]), (8.5, 19.0))
        self.assertEqual(settings["weekdays"], {0, 2, 4, 6})
        # the screen shows them back
        shown = self.env["res.config.settings"].create({})
        self.assertEqual(
            [shown[f"mkt_quiet_{d}"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")],
            [True, False, True, False, True, False, True],
        )
        self.assertEqual((shown.mkt_cap_all, shown.mkt_cap_all_period), (3, "day"))

    def test_settings_refuse_negative_caps(self):
        for fname in ("mkt_cap_all", "mkt_cap_email", "mkt_cap_sms"):
            with self.subTest(field=fname):
                with self.assertRaisesRegex(ValidationError, "cannot be negative"):
                    self.env["res.config.settings"].create({fname: -1}).execute()
        self.assertEqual(self.env["mkt.sending.policy"]._get_settings()["caps"][None][0], 0)

    def test_settings_refuse_empty_window(self):
        cases = [
            ({"mkt_quiet_hour_from": 20.0, "mkt_quiet_hour_to": 9.0}, "start must come before"),
            ({"mkt_quiet_hour_from": 9.0, "mkt_quiet_hour_to": 9.0}, "start must come before"),
            ({"mkt_quiet_hour_from": 9.0, "mkt_quiet_hour_to": 25.0}, "within the day"),
            (
                {
                    day: False
                    for day in (
                        "mkt_quiet_mon",
                        "mkt_quiet_tue",
                        "mkt_quiet_wed",
                        "mkt_quiet_thu",
                        "mkt_quiet_fri",
                        "mkt_quiet_sat",
                        "mkt_quiet_sun",
                    )
                },
                "at least one weekday",
            ),
        ]
        for values, message in cases:
            with self.subTest(values=values):
                with self.assertRaisesRegex(ValidationError, message):
                    self.env["res.config.settings"].create(
                        {"mkt_quiet_hours": True, **values}
                    ).execute()
        # a window that is off is not checked
        self.env["res.config.settings"].create(
            {
                "mkt_quiet_hours": False,
                "mkt_quiet_hour_from": 20.0,
                "mkt_quiet_hour_to": 9.0,
            }
        ).execute()
        self.assertFalse(self.env["mkt.sending.policy"]._get_settings()["quiet_hours"])
