from datetime import timedelta

from odoo import Command
from odoo.tests import tagged

from odoo.addons.point_of_sale.tests.common import TestPoSCommon

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestResults(MktCampaignCommon, TestPoSCommon):
    """What a campaign achieved: delivery and engagement rates, per-step
    success, budget and costs, and the revenue it brought from CRM, sales and
    the Point of Sale, with its ROI."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the POS test setup runs as a POS user: make them run campaigns too
        cls.env.user.group_ids |= (
            cls.env.ref("sales_team.group_sale_manager")
            | cls.env.ref("mkt_campaign.group_mkt_campaign_manager")
            | cls.env.ref("mass_mailing.group_mass_mailing_user")
        )
        cls.product = cls.env["product.product"].create(
            {
                "name": "Garden chair",
                "type": "consu",
                "available_in_pos": True,
                "taxes_id": [Command.clear()],
            }
        )

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def _sent_campaign(self, **values):
        """A campaign whose welcome e-mail went to Alice, Bob, Alice Again and
        Carol (Dan, without address, is rejected)."""
        campaign, steps = self._create_campaign([("welcome", {})], **values)
        campaign.action_start()
        self._run_queue()
        self.sent_on = steps["welcome"].trace_ids.filtered("processed_date")[:1].processed_date
        return campaign, steps

    def _pos_order(self, partner, amount, when):
        session = self.basic_config.current_session_id
        if not session:
            self.basic_config.open_ui()
            session = self.basic_config.current_session_id
            session.set_opening_control(0, None)
        order = self.env["pos.order"].create(
            {
                "session_id": session.id,
                "partner_id": partner.id,
                "company_id": self.env.company.id,
                "amount_total": 0,
                "amount_paid": 0,
                "amount_tax": 0,
                "amount_return": 0,
                "lines": [
                    Command.create(
                        {
                            "product_id": self.product.id,
                            "qty": 1,
                            "price_unit": amount,
                            "price_subtotal": amount,
                            "price_subtotal_incl": amount,
                            "tax_ids": [],
                        }
                    )
                ],
            }
        )
        order.lines._onchange_amount_line_all()
        order._compute_prices()
        context = {"active_id": order.id, "active_ids": order.ids}
        self.env["pos.make.payment"].with_context(**context).create(
            {"amount": order.amount_total, "payment_method_id": self.bank_pm1.id}
        ).with_context(**context).check()
        order.date_order = when
        return order

    def _sale_order(self, partner, amount, when, **values):
        order = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [
                    Command.create(
                        {"product_id": self.product.id, "product_uom_qty": 1, "price_unit": amount}
                    )
                ],
                **values,
            }
        )
        order.action_confirm()
        order.date_order = when
        return order

    # ------------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------------

    def test_delivery_and_engagement_rates(self):
        """The campaign shows what was sent, opened, clicked, replied and
        bounced, as rates of the e-mails sent; each step its success rate.
        Test runs never count."""
        campaign, steps = self._sent_campaign()
        welcome = steps["welcome"]
        self._event(welcome, self.alice, "open")
        self._event(welcome, self.bob, "open")
        self._event(welcome, self.bob, "click")
        self._event(welcome, self.carol, "bounce")
        campaign.invalidate_recordset()
        self.assertEqual(campaign.sent_count, 4)
        self.assertEqual(campaign.sent_email_count, 4)
        self.assertEqual(campaign.rejected_count, 1)
        self.assertEqual(campaign.pending_count, 0)
        self.assertEqual(
            (campaign.opened_count, campaign.clicked_count, campaign.bounced_count), (2, 1, 1)
        )
        # a click implies an open: Odoo marks the mail opened too
        self.assertAlmostEqual(campaign.open_rate, 50.0)
        self.assertAlmostEqual(campaign.click_rate, 25.0)
        self.assertAlmostEqual(campaign.bounce_rate, 25.0)
        self.assertAlmostEqual(campaign.reply_rate, 0.0)
        self.assertAlmostEqual(welcome.success_rate, 80.0)  # 4 processed, 1 rejected

        # a test run of another campaign on the same people adds nothing to this one,
        # and a test campaign shows no results at all
        test_campaign, _steps = self._create_campaign([("welcome", {})], mode="test_realtime")
        test_campaign.action_start()
        self._run_queue()
        test_campaign.invalidate_recordset()
        self.assertEqual((test_campaign.sent_count, test_campaign.rejected_count), (0, 0))

    def test_event_log(self):
        """Reporting > Event Log lists what happened to each message, one row
        per event (each click with its link)."""
        campaign, steps = self._sent_campaign()
        welcome = steps["welcome"]
        self._event(welcome, self.alice, "open")
        self._click_link(welcome, self.bob)
        self._event(welcome, self.carol, "bounce")
        events = self.env["mkt.event"].search([("campaign_id", "=", campaign.id)])
        by_type = {}
        for event in events:
            by_type.setdefault(event.event_type, self.env["mkt.event"])
            by_type[event.event_type] |= event
        self.assertEqual(len(by_type["sent"]), 4)
        self.assertEqual(by_type["bounced"].record_name, "Carol Customer")
        self.assertEqual(
            set(by_type["opened"].mapped("record_name")),
            {"Alice Audience", "Bob Buyer"},
            "a click marks the mail opened too",
        )
        self.assertEqual(by_type["clicked"].record_name, "Bob Buyer")
        self.assertEqual(by_type["clicked"].url, "https://www.example.com/spring-sale")
        self.assertEqual(by_type["clicked"].activity_id, welcome)

    def test_budget_and_costs(self):
        """Costs are the registered ones plus a unit cost per message sent;
        the budget shows what is left and how much is used."""
        campaign, steps = self._sent_campaign(
            budget=100.0,
            cost_per_email=0.5,
        )
        campaign.cost_ids = [
            Command.create({"name": "Contact list", "amount": 60.0}),
            Command.create(
                {"name": "E-mail design", "amount": 30.0, "activity_id": steps["welcome"].id}
            ),
        ]
        self.assertAlmostEqual(campaign.registered_cost, 90.0)
        self.assertAlmostEqual(campaign.message_cost, 2.0)  # 4 e-mails sent
        self.assertAlmostEqual(campaign.total_cost, 92.0)
        self.assertAlmostEqual(campaign.budget_remaining, 8.0)
        self.assertAlmostEqual(campaign.budget_used_rate, 92.0)
        self.assertEqual(campaign.currency_id, self.env.company.currency_id)

    def test_revenue_and_roi(self):
        """Revenue: won opportunities attributed to the campaign, its sales
        (UTM-attributed, or placed by a messaged customer within the window)
        and POS orders of messaged customers within the window; ROI against
        the total cost."""
        campaign, _steps = self._sent_campaign(attribution_days=30)
        campaign.cost_ids = [Command.create({"name": "Agency", "amount": 100.0})]
        utm = campaign.utm_campaign_id
        sent = self.sent_on
        # POS: Alice buys 2 days after the e-mail (counts), and 40 days after
        # (out of the window); Carol bought the day before (does not count);
        # the outsider was never messaged
        self._pos_order(self.alice, 50.0, sent + timedelta(days=2))
        self._pos_order(self.alice, 70.0, sent + timedelta(days=40))
        self._pos_order(self.carol, 80.0, sent - timedelta(days=1))
        self._pos_order(self.outsider, 90.0, sent + timedelta(days=1))
        # sales: Bob orders within the window; the outsider through the
        # campaign's tracked link (UTM)
        self._sale_order(self.bob, 120.0, sent + timedelta(days=3))
        self._sale_order(self.outsider, 200.0, sent + timedelta(days=5), campaign_id=utm.id)
        # CRM: two leads of the campaign, one won (300), one pending (500)
        won, _pending = self.env["crm.lead"].create(
            [
                {
                    "name": "Terrace project",
                    "type": "opportunity",
                    "campaign_id": utm.id,
                    "expected_revenue": 300.0,
                    "partner_id": self.outsider.id,
                },
                {
                    "name": "Garden project",
                    "type": "opportunity",
                    "campaign_id": utm.id,
                    "expected_revenue": 500.0,
                },
            ]
        )
        won.action_set_won()
        # the won opportunity's quotation is not counted a second time
        if "opportunity_id" in self.env["sale.order"]._fields:
            self._sale_order(
                self.outsider,
                300.0,
                sent + timedelta(days=6),
                campaign_id=utm.id,
                opportunity_id=won.id,
            )

        campaign.invalidate_recordset()
        self.assertAlmostEqual(campaign.pos_revenue, 50.0)
        self.assertAlmostEqual(campaign.sale_revenue, 320.0)
        self.assertEqual((campaign.lead_count, campaign.won_count), (2, 1))
        self.assertAlmostEqual(campaign.conversion_rate, 50.0)
        self.assertAlmostEqual(campaign.crm_revenue, 300.0)
        self.assertAlmostEqual(campaign.revenue, 670.0)
        self.assertAlmostEqual(campaign.total_cost, 100.0)
        self.assertAlmostEqual(campaign.roi, 570.0)

    def test_lead_campaign_conversion(self):
        """On a campaign targeting leads, the enrolled leads it messaged and
        that were won afterwards are its conversions."""
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": f"Lead {name}",
                    "email_from": f"{name}@example.com",
                    "type": "opportunity",
                    "expected_revenue": 1000.0,
                    "tag_ids": [],
                }
                for name in ("lea", "leo", "lia")
            ]
        )
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            model_id=self.env["ir.model"]._get("crm.lead").id,
            domain=repr([("id", "in", leads.ids)]),
        )
        campaign.action_start()
        self._run_queue()
        leads[0].action_set_won()
        campaign.invalidate_recordset()
        self.assertEqual((campaign.lead_count, campaign.won_count), (3, 1))
        self.assertAlmostEqual(campaign.crm_revenue, 1000.0)
        self.assertAlmostEqual(campaign.conversion_rate, 100 / 3)
