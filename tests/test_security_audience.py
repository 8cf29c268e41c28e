from contextlib import contextmanager

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import MktCampaignCommon

# issue 7, attack 1: a filter that makes its author a Settings administrator
# when it is evaluated with `user` (a superuser record in 19) in scope
ESCALATING_FILTER = (
    "[('id', '!=', 0 if user.env.ref('base.group_system').write("
    "{'user_ids': [(4, user.id)]}) else 0)]"
)


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestSecurityAudience(MktCampaignCommon):
    """Filters are literal domains evaluated without any record in scope, and
    the audience is what the campaign's responsible user may read in the
    campaign's company (issue 7, attacks 1 and 4)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_a = cls.env.company
        cls.company_b = cls.company_2
        # the manager's only company is A (mail_new_test_user's default)
        assert cls.user_mkt_manager.company_ids == cls.company_a
        # tagged like the audience, but of company B: invisible to the manager
        cls.partner_b = cls.env["res.partner"].create(
            {
                "name": "Bea Company B",
                "email": "bea@example.com",
                "company_id": cls.company_b.id,
                "category_id": cls.tag.ids,
            }
        )
        cls.group_system = cls.env.ref("base.group_system")

    @contextmanager
    def _refused(self, error, regex):
        """assertRaisesRegex in a savepoint, rolled back as a refused RPC call is."""
        with self.assertRaises(error) as cm:
            yield cm
        self.assertRegex(str(cm.exception), regex)

    def _assert_not_escalated(self, user):
        self.env.invalidate_all()
        user = user.sudo()
        self.assertNotIn(user, self.group_system.sudo().user_ids)
        self.assertFalse(user.has_group("base.group_system"))
        self.assertFalse(user.has_group("base.group_erp_manager"))

    def _groups(self, user):
        self.env.invalidate_all()
        return user.sudo().all_group_ids

    def _participants(self, campaign):
        self.env.invalidate_all()
        return set(campaign.sudo().participant_ids.mapped("res_id"))

    # ------------------------------------------------------------------
    # Attack 1: filters are evaluated with no record in scope
    # ------------------------------------------------------------------

    @users("mkt_manager")
    def test_attack_campaign_filter(self):
        """A manager's escalating campaign filter is refused at save time, and
        neither the preview (count, sample) nor the save runs it."""
        user = self.env.user
        groups = self._groups(user)
        Campaign = self.env["mkt.campaign"]
        with self._refused(
            ValidationError, "The filter of campaign Escalation is invalid.*'user' is not defined"
        ):
            Campaign.create(
                {
                    "name": "Escalation",
                    "model_id": self.partner_model.id,
                    "domain": ESCALATING_FILTER,
                }
            )
        self._assert_not_escalated(user)

        campaign = Campaign.create(
            {
                "name": "Escalation",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        with self._refused(ValidationError, "The filter of campaign Escalation is invalid"):
            campaign.write({"domain": ESCALATING_FILTER})
        # the form's live count and sample evaluate the filter being typed
        draft = Campaign.new(
            {
                "name": "Escalation",
                "model_id": self.partner_model.id,
                "domain": ESCALATING_FILTER,
            }
        )
        self.assertEqual(draft.record_count, 0)
        self.assertIn("is invalid", draft.sample_html)
        self._assert_not_escalated(user)
        self.assertEqual(self._groups(user), groups)
        self.env.invalidate_all()
        self.assertEqual(campaign.domain, self.audience_domain)

    @users("mkt_manager")
    def test_attack_step_filter(self):
        """The same filter on a step is refused, at create and at write."""
        user = self.env.user
        groups = self._groups(user)
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Escalation",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        Activity = self.env["mkt.activity"]
        with self._refused(ValidationError, "The filter of step Hello is invalid"):
            Activity.create(
                {
                    "campaign_id": campaign.id,
                    "name": "Hello",
                    "domain": ESCALATING_FILTER,
                }
            )
        step = Activity.create({"campaign_id": campaign.id, "name": "Hello"})
        with self._refused(ValidationError, "The filter of step Hello is invalid"):
            step.write({"domain": ESCALATING_FILTER})
        self._assert_not_escalated(user)
        self.assertEqual(self._groups(user), groups)

    @users("mkt_manager")
    def test_filter_holds_plain_values_only(self):
        """A filter is a list of conditions on texts, numbers, booleans and
        dates; dates may be computed (the domain editor writes
        ``context_today()``), nothing else reaches the database."""
        Campaign = self.env["mkt.campaign"]
        for domain in (
            "[('name', '=', context_today)]",
            "[('id', '=', relativedelta(days=1))]",
            "{'name': 'x'}",
            "[('name', '=', env)]",
            "[('name', '=', context_today.__globals__)]",
        ):
            with (
                self.subTest(domain=domain),
                self._refused(ValidationError, "The filter of campaign Odd is invalid"),
            ):
                Campaign.create(
                    {
                        "name": "Odd",
                        "model_id": self.partner_model.id,
                        "domain": domain,
                    }
                )
        campaign = Campaign.create(
            {
                "name": "Dates",
                "model_id": self.partner_model.id,
                "domain": "[('create_date', '>=', (context_today() - relativedelta(days=7))"
                ".strftime('%Y-%m-%d')), ('user_id', 'in', [uid, False]),"
                " ('company_id', 'in', company_ids + [False])]",
            }
        )
        self.assertTrue(campaign._get_domain())
        # uid is the responsible user's id, companies are ids: no record
        context = campaign._get_eval_context()
        self.assertEqual(context["uid"], self.env.uid)
        self.assertEqual(context["company_ids"], self.company_a.ids)
        self.assertNotIn("user", context)

    # ------------------------------------------------------------------
    # Attack 4: the audience is what the responsible user may read
    # ------------------------------------------------------------------

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_attack_other_company_launch(self):
        """A manager of company A launches a campaign on contacts: the tagged
        contact of company B is not enrolled, nor added by the sync cron."""
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            name="Company A only",
            user_id=self.env.uid,
        )
        campaign = campaign.with_user(self.env.user)
        self.assertEqual(campaign.company_id, self.company_a)
        campaign.action_start()
        self.assertEqual(self._participants(campaign), set(self.partners.ids))
        self.assertNotIn(self.partner_b.id, self._participants(campaign))

        # newcomers: one shared (enrolled by the hourly sync), one of company B (not)
        newcomer = self._new_contact()
        self._new_contact(
            name="Bert Company B", email="bert@example.com", company_id=self.company_b.id
        )
        self._run_sync()
        self.assertEqual(self._participants(campaign), set((self.partners | newcomer).ids))

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_attack_manual_inclusion_other_company(self):
        """A record of company B added by hand ("Always include") to the
        campaign of a company-A manager is not enrolled."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Refined",
                "model_id": self.partner_model.id,
                "domain": repr([("id", "in", self.alice.ids)]),
                "activity_ids": [
                    Command.create(
                        {
                            "name": "Hello",
                            "subject": "Hello {{ object.name }}",
                            "body_html": "<p>Hello</p>",
                        }
                    )
                ],
            }
        )
        # lines written by someone who may read the record (or over RPC with
        # the bare id): the company-B contact stays out, the other one is in
        self.env["mkt.campaign.refinement"].sudo().create(
            {
                "campaign_id": campaign.id,
                "kind": "include",
                "res_id": self.partner_b.id,
            }
        )
        self.env["mkt.campaign.refinement"].sudo().create(
            {
                "campaign_id": campaign.id,
                "kind": "include",
                "res_id": self.bob.id,
            }
        )
        campaign.action_start()
        self.assertEqual(self._participants(campaign), {self.alice.id, self.bob.id})

    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_previous_campaign_of_other_company(self):
        """A previous-campaign line pointing to a campaign the responsible user
        may not read (another company's) stops the launch with a message."""
        foreign, _steps = self._create_campaign(
            [("welcome", {})],
            name="Company B campaign",
            company_id=self.company_b.id,
        )
        foreign.action_start()
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            name="Follow-up",
            user_id=self.user_mkt_manager.id,
            previous_ids=[
                Command.create(
                    {
                        "condition": "in",
                        "previous_campaign_id": foreign.id,
                    }
                )
            ],
        )
        # the launching manager may not read it either: its number, not its name
        with self._refused(UserError, f"may not read the previous campaigns #{foreign.id} ") as cm:
            campaign.with_user(self.user_mkt_manager).action_start()
        self.assertNotIn("Company B campaign", str(cm.exception))
        # an administrator launching it sees the name
        campaign.user_id = self.user_mkt_manager
        with self._refused(UserError, "may not read the previous campaigns Company B campaign"):
            campaign.action_start()
        self.assertEqual(campaign.state, "draft")
        self.assertFalse(campaign.participant_ids)

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_attack_move_step_to_other_company(self):
        """A manager of company A moves a step of theirs, or an A/B variant of
        it, to a campaign of company B (whose campaign they may not read):
        refused, as reading that campaign is (the rules check a write before it,
        not its result). The step's target used to be read as superuser."""
        foreign, foreign_steps = self._create_campaign(
            [("welcome", {})], name="Company B campaign", company_id=self.company_b.id
        )
        campaign, steps = self._create_campaign([("welcome", {})], name="Company A campaign")
        step = steps["welcome"].with_env(self.env)
        step.write(
            {
                "ab_enabled": True,
                "ab_variant_ids": [Command.create({"name": "Short", "share": 25, "subject": "Hi"})],
            }
        )
        with self.assertRaises(AccessError):
            step.write({"campaign_id": foreign.id})
        with self.assertRaises(AccessError):
            step.ab_variant_ids.write({"activity_id": foreign_steps["welcome"].id})
        self.env.invalidate_all()
        self.assertEqual(step.sudo().campaign_id, campaign)
        self.assertEqual(step.sudo().ab_variant_ids.activity_id, step)
        self.assertEqual(foreign.sudo().activity_ids, foreign_steps["welcome"])

    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_step_filter_with_audience_rights(self):
        """The step filter checked at execution sees what the responsible user
        may read: a participant moved to another company meanwhile is
        rejected, not messaged."""
        campaign, steps = self._create_campaign(
            [("welcome", {"domain": "[('email', '!=', False)]"})],
            user_id=self.user_mkt_manager.id,
        )
        campaign.with_user(self.user_mkt_manager).action_start()
        self.bob.company_id = self.company_b
        self._run_queue()
        states = self._trace_states(steps["welcome"])
        self.assertEqual(states[self.bob], "rejected")
        self.assertEqual(states[self.alice], "processed")
        self.assertEqual(states[self.dan], "rejected")  # no e-mail: the filter
        bob_trace = self._traces(steps["welcome"], self.bob)
        self.assertEqual(bob_trace.error_message, "The record no longer matches the step's filter.")

    def test_responsible_archived(self):
        """Without an active responsible user nobody is enrolled: the launch
        is refused with a message, the sync cron skips the campaign, and a
        step filter cannot be checked (its rows fail with the reason)."""
        campaign, steps = self._create_campaign(
            [("welcome", {"domain": "[('email', '!=', False)]"})],
            user_id=self.user_mkt_manager.id,
        )
        campaign.user_id = False
        with self._refused(UserError, "Campaign Spring Sale has no active responsible user"):
            campaign.action_start()
        self.assertEqual(campaign.state, "draft")

        campaign.user_id = self.user_mkt_manager
        campaign.action_start()
        self.assertEqual(self._participants(campaign), set(self.partners.ids))
        self.user_mkt_manager.active = False
        self._new_contact()
        with self.assertLogs("odoo.addons.mkt_campaign.models.mkt_campaign", "WARNING"):
            self._run_sync()
        self.assertEqual(self._participants(campaign), set(self.partners.ids))
        self._run_queue()
        trace = self._traces(steps["welcome"], self.alice)
        self.assertEqual(trace.state, "failed")
        self.assertIn("has no active responsible user", trace.error_message)

    def test_responsible_without_company(self):
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            user_id=self.user_mkt_manager.id,
            company_id=self.company_b.id,
        )
        with self._refused(
            UserError,
            "Manfred Campaign Manager of campaign Spring Sale has no access to its "
            "company Company 2",
        ):
            campaign.action_start()

    def test_responsible_cannot_read_target(self):
        """A responsible user without access to the target's records (here a
        manager with no sales rights, on leads) enrols nothing: the launch is
        refused with a message."""
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            user_id=self.user_mkt_manager.id,
            model_id=self.env["ir.model"]._get_id("crm.lead"),
            domain="[]",
        )
        with self._refused(
            UserError,
            "Manfred Campaign Manager of campaign Spring Sale may not read Lead.* records",
        ):
            campaign.action_start()
        self.assertFalse(campaign.participant_ids)

    def test_record_rule_own_leads(self):
        """A salesman who may only see their own leads (and unassigned ones)
        enrols only those, even through the sync cron run as superuser."""
        salesman = mail_new_test_user(
            self.env,
            login="mkt_own_leads",
            name="Olga Own Leads",
            groups="base.group_user,sales_team.group_sale_salesman,"
            "mkt_campaign.group_mkt_campaign_manager",
        )
        Lead = self.env["crm.lead"]
        own, other, unassigned = Lead.create(
            [
                {"name": "Own lead", "email_from": "own@example.com", "user_id": salesman.id},
                {
                    "name": "Colleague's lead",
                    "email_from": "other@example.com",
                    "user_id": self.user_mkt_manager.id,
                },
                {"name": "Nobody's lead", "email_from": "nobody@example.com", "user_id": False},
            ]
        )
        leads = own | other | unassigned
        campaign = (
            self.env["mkt.campaign"]
            .with_user(salesman)
            .create(
                {
                    "name": "My leads",
                    "model_id": self.env["ir.model"]._get_id("crm.lead"),
                    "domain": repr([("id", "in", leads.ids)]),
                    "activity_ids": [
                        Command.create(
                            {
                                "name": "Hello",
                                "subject": "Hello {{ object.name }}",
                                "body_html": "<p>Hello</p>",
                            }
                        )
                    ],
                }
            )
        )
        self.assertEqual(campaign.user_id, salesman)
        self.assertEqual(campaign.record_count, 2)
        campaign.action_start()
        self.assertEqual(self._participants(campaign), {own.id, unassigned.id})
        unassigned.user_id = salesman
        other.user_id = salesman
        self._run_sync()
        self.assertEqual(self._participants(campaign), set(leads.ids))

    # ------------------------------------------------------------------
    # Purchase statistics respect the user's companies
    # ------------------------------------------------------------------

    def _sale(self, partner, product, amount, company):
        order = (
            self.env["sale.order"]
            .with_company(company)
            .create(
                {
                    "partner_id": partner.id,
                    "company_id": company.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": product.id,
                                "product_uom_qty": 1,
                                "price_unit": amount,
                                "tax_ids": [Command.clear()],
                            }
                        )
                    ],
                }
            )
        )
        order.write({"state": "sale"})
        return order

    def test_purchase_statistics_by_company(self):
        """The figures and filters of purchase behaviour count the orders of
        the user's companies only: an audience of company A never matches on
        what was bought in company B."""
        Product = self.env["product.product"]
        seeds = Product.create({"name": "Seeds", "type": "consu", "taxes_id": []})
        tractor = Product.create({"name": "Tractor", "type": "consu", "taxes_id": []})
        buyer = self.carol
        self._sale(buyer, seeds, 100, self.company_a)
        self._sale(buyer, tractor, 5000, self.company_b)
        self.env.flush_all()

        def matches(env, domain):
            return bool(env["res.partner"].search([("id", "=", buyer.id), *domain]))

        manager_env = self.env(user=self.user_mkt_manager)
        both_env = self.env(
            context={
                "allowed_company_ids": (self.company_a | self.company_b).ids,
            }
        )
        for env, both in ((manager_env, False), (both_env, True)):
            with self.subTest(companies=env.companies.mapped("name")):
                partner = buyer.with_env(env)
                if both:
                    self.assertGreater(partner.mkt_amount_spent, 1000)
                else:
                    self.assertEqual(partner.mkt_amount_spent, 100)
                self.assertEqual(partner.mkt_order_count, 2 if both else 1)
                self.assertEqual(
                    set(partner.mkt_product_ids.ids),
                    {seeds.id, tractor.id} if both else {seeds.id},
                )
                self.assertEqual(matches(env, [("mkt_amount_spent", ">", 1000)]), both)
                self.assertEqual(matches(env, [("mkt_order_count", ">=", 2)]), both)
                self.assertEqual(matches(env, [("mkt_product_ids", "in", tractor.ids)]), both)
                self.assertTrue(matches(env, [("mkt_product_ids", "in", seeds.ids)]))
                self.assertTrue(matches(env, [("mkt_is_customer", "=", True)]))

        # a campaign of company A on big spenders does not enrol the buyer
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            user_id=self.user_mkt_manager.id,
            domain=repr([("category_id", "in", self.tag.ids), ("mkt_amount_spent", ">", 1000)]),
        )
        campaign.with_user(self.user_mkt_manager).action_start()
        self.assertFalse(self._participants(campaign))
