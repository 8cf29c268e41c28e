from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.point_of_sale.tests.common import TestPoSCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestAudiencePurchase(TestPoSCommon):
    """Purchase-behaviour filters of contacts and leads, on real confirmed sale
    orders, paid POS orders (and a refund) and a posted invoice."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.group_ids |= cls.env.ref("sales_team.group_sale_manager") | cls.env.ref(
            "mkt_campaign.group_mkt_campaign_manager"
        )
        cls.now = fields.Datetime.now()
        Category = cls.env["product.category"]
        cls.categ_parent = Category.create({"name": "Garden"})
        cls.categ_child = Category.create({"name": "Seeds", "parent_id": cls.categ_parent.id})
        cls.categ_other = Category.create({"name": "Books"})
        Product = cls.env["product.product"]
        product_values = {
            "type": "consu",
            "available_in_pos": True,
            "taxes_id": [Command.clear()],
        }
        cls.tomato_seeds = Product.create(
            {"name": "Tomato seeds", "categ_id": cls.categ_child.id, **product_values}
        )
        cls.book = Product.create(
            {"name": "Gardening book", "categ_id": cls.categ_other.id, **product_values}
        )
        cls.rake = Product.create(
            {"name": "Rake", "categ_id": cls.categ_parent.id, **product_values}
        )
        cls.unsold = Product.create(
            {"name": "Basil seeds", "categ_id": cls.categ_child.id, **product_values}
        )

        Partner = cls.env["res.partner"]
        # alice: a sale order 10 days ago (tomato seeds, 100) and a POS order
        #        60 days ago (book, 50)
        # bob:   POS orders 200 days ago (book, 200) and 400 days ago (book, 300),
        #        the latter partly refunded (-50) 100 days ago
        # carol: a posted invoice only
        # dan:   a quotation and a cancelled sale order only
        # erin:  nothing
        # frank: a sale order 500 days ago (rake, 1000) and one of 30 cancelled
        cls.alice, cls.bob, cls.carol, cls.dan, cls.erin, cls.frank = cls.partners = Partner.create(
            [
                {"name": name, "email": f"{name.lower()}@example.com"}
                for name in ("Alice", "Bob", "Carol", "Dan", "Erin", "Frank")
            ]
        )
        cls.alice_so = cls._sale_order(cls.alice, [(cls.tomato_seeds, 1, 100)], days_ago=10)
        cls.alice_pos = cls._pos_order(cls.alice, [(cls.book, 1, 50)], days_ago=60)
        cls._pos_order(cls.bob, [(cls.book, 2, 100)], days_ago=200)
        bob_old = cls._pos_order(cls.bob, [(cls.book, 3, 100)], days_ago=400)
        cls._pos_refund(bob_old, days_ago=100)
        cls.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": cls.carol.id,
                "invoice_date": fields.Date.today(),
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Consulting",
                            "quantity": 1,
                            "price_unit": 80,
                            "tax_ids": [],
                        }
                    )
                ],
            }
        ).action_post()
        cls._sale_order(cls.dan, [(cls.rake, 1, 70)], days_ago=5, confirm=False)
        cls._sale_order(cls.dan, [(cls.rake, 1, 70)], days_ago=5).action_cancel()
        cls._sale_order(cls.frank, [(cls.rake, 1, 1000)], days_ago=500)
        cls._sale_order(cls.frank, [(cls.tomato_seeds, 1, 30)], days_ago=3).action_cancel()

        Lead = cls.env["crm.lead"]
        cls.lead_alice = Lead.create({"name": "Alice wants more", "partner_id": cls.alice.id})
        cls.lead_bob = Lead.create({"name": "Bob's project", "partner_id": cls.bob.id})
        cls.lead_anonymous = Lead.create({"name": "Someone", "email_from": "x@example.com"})
        cls.leads = cls.lead_alice | cls.lead_bob | cls.lead_anonymous

    @classmethod
    def _sale_order(cls, partner, lines, days_ago, confirm=True):
        order = cls.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "product_uom_qty": qty,
                            "price_unit": price / qty,
                        }
                    )
                    for product, qty, price in lines
                ],
            }
        )
        if confirm:
            order.action_confirm()
        # confirming dates the order now: move it to its day
        order.date_order = cls.now - timedelta(days=days_ago)
        return order

    @classmethod
    def _pos_session(cls):
        config = cls.basic_config
        if not config.current_session_id:
            config.open_ui()
            config.current_session_id.set_opening_control(0, None)
        return config.current_session_id

    @classmethod
    def _pos_order(cls, partner, lines, days_ago):
        order = cls.env["pos.order"].create(
            {
                "session_id": cls._pos_session().id,
                "partner_id": partner.id,
                "company_id": cls.env.company.id,
                "date_order": cls.now - timedelta(days=days_ago),
                "amount_total": 0,
                "amount_paid": 0,
                "amount_tax": 0,
                "amount_return": 0,
                "lines": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "qty": qty,
                            "price_unit": unit_price,
                            "price_subtotal": qty * unit_price,
                            "price_subtotal_incl": qty * unit_price,
                            "tax_ids": [],
                        }
                    )
                    for product, qty, unit_price in lines
                ],
            }
        )
        order.lines._onchange_amount_line_all()
        order._compute_prices()
        cls._pos_pay(order)
        return order

    @classmethod
    def _pos_refund(cls, order, days_ago):
        refund = cls.env["pos.order"].browse(order.refund()["res_id"])
        # refund one unit of the first line only
        refund.lines[1:].unlink()
        refund.lines.qty = -1
        refund.lines._onchange_amount_line_all()
        refund._compute_prices()
        refund.date_order = cls.now - timedelta(days=days_ago)
        cls._pos_pay(refund)
        return refund

    @classmethod
    def _pos_pay(cls, order):
        context = {"active_id": order.id, "active_ids": order.ids}
        cls.env["pos.make.payment"].with_context(**context).create(
            {
                "amount": order.amount_total,
                "payment_method_id": cls.bank_pm1.id,
            }
        ).with_context(**context).check()

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def _match(self, domain, records=None):
        """Our records matching ``domain`` (the database holds others)."""
        records = self.partners if records is None else records
        return records.search([("id", "in", records.ids)] + list(domain))

    def assertMatch(self, domain, expected, records=None, python=True):
        found = self._match(domain, records)
        self.assertEqual(
            set(found.mapped("name")),
            set(expected.mapped("name")),
            f"filter {domain}",
        )
        if python:
            # filtered_domain, which compares the computed values in Python,
            # agrees with the SQL of the search methods
            records = self.partners if records is None else records
            self.env.invalidate_all()
            self.assertEqual(
                records.filtered_domain(domain),
                expected,
                f"filtered_domain {domain}",
            )

    # ------------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------------

    def test_setup(self):
        self.assertEqual(self.alice_so.state, "sale")
        self.assertEqual(self.alice_pos.state, "paid")
        refunds = self.env["pos.order"].search(
            [("partner_id", "=", self.bob.id), ("is_refund", "=", True)]
        )
        self.assertEqual(refunds.state, "paid")
        self.assertAlmostEqual(refunds.amount_total, -100)

    def test_computed_values(self):
        self.env.invalidate_all()
        alice, bob, carol, dan, erin, frank = self.partners
        self.assertTrue(alice.mkt_is_customer)
        self.assertEqual(alice.mkt_order_count, 2)
        self.assertAlmostEqual(alice.mkt_amount_spent, 150)
        self.assertAlmostEqual(alice.mkt_amount_spent_30d, 100)
        self.assertAlmostEqual(alice.mkt_amount_spent_90d, 150)
        self.assertAlmostEqual(alice.mkt_amount_spent_365d, 150)
        self.assertEqual(alice.mkt_last_purchase_date, self.alice_so.date_order)
        self.assertEqual(alice.mkt_product_ids, self.tomato_seeds | self.book)
        # with the parents of the categories, as the search matches them
        self.assertEqual(
            alice.mkt_product_categ_ids,
            self.categ_parent | self.categ_child | self.categ_other,
        )
        # the refund is no order, and its products are not bought; its amount is
        self.assertEqual(bob.mkt_order_count, 2)
        self.assertAlmostEqual(bob.mkt_amount_spent, 400)
        self.assertAlmostEqual(bob.mkt_amount_spent_365d, 100)
        self.assertAlmostEqual(bob.mkt_amount_spent_90d, 0)
        self.assertEqual(bob.mkt_product_ids, self.book)
        self.assertTrue(carol.mkt_is_customer)
        self.assertEqual(carol.mkt_order_count, 0)
        self.assertFalse(carol.mkt_last_purchase_date)
        for partner in (dan, erin):
            self.assertFalse(partner.mkt_is_customer)
            self.assertEqual(partner.mkt_order_count, 0)
            self.assertEqual(partner.mkt_amount_spent, 0)
            self.assertFalse(partner.mkt_product_ids)
        self.assertAlmostEqual(frank.mkt_amount_spent, 1000)
        self.assertAlmostEqual(frank.mkt_amount_spent_365d, 0)
        self.assertEqual(frank.mkt_product_ids, self.rake)
        # leads show their contact's figures
        self.assertEqual(self.lead_alice.mkt_order_count, 2)
        self.assertEqual(self.lead_alice.mkt_product_ids, self.tomato_seeds | self.book)
        self.assertAlmostEqual(self.lead_bob.mkt_amount_spent, 400)
        self.assertEqual(self.lead_anonymous.mkt_order_count, 0)
        self.assertFalse(self.lead_anonymous.mkt_is_customer)

    def test_is_customer(self):
        alice, bob, carol, dan, erin, frank = self.partners
        customers = alice | bob | carol | frank
        self.assertMatch([("mkt_is_customer", "=", True)], customers)
        self.assertMatch([("mkt_is_customer", "!=", False)], customers)
        self.assertMatch([("mkt_is_customer", "=", False)], dan | erin)
        self.assertMatch([("mkt_is_customer", "!=", True)], dan | erin)
        self.assertMatch([("mkt_is_customer", "in", [True, False])], self.partners)

    def test_products_bought(self):
        alice, bob, carol, dan, erin, frank = self.partners
        # bought in a sale order, in a POS order, in either
        self.assertMatch([("mkt_product_ids", "in", self.tomato_seeds.ids)], alice)
        self.assertMatch([("mkt_product_ids", "in", self.book.ids)], alice | bob)
        self.assertMatch(
            [("mkt_product_ids", "in", (self.tomato_seeds | self.rake).ids)],
            alice | frank,
        )
        self.assertMatch([("mkt_product_ids", "=", self.rake.id)], frank)
        self.assertMatch([("mkt_product_ids", "in", self.unsold.ids)], self.env["res.partner"])
        # quotations and cancelled orders don't count: dan and frank's tomatoes
        self.assertMatch([("mkt_product_ids", "not in", self.book.ids)], carol | dan | erin | frank)
        self.assertMatch(
            [("mkt_product_ids", "!=", self.tomato_seeds.id)],
            bob | carol | dan | erin | frank,
        )
        # set / not set
        self.assertMatch([("mkt_product_ids", "!=", False)], alice | bob | frank)
        self.assertMatch([("mkt_product_ids", "=", False)], carol | dan | erin)
        # on the products' fields (the domain editor's path), by name
        self.assertMatch([("mkt_product_ids.name", "ilike", "seeds")], alice)
        self.assertMatch(
            [("mkt_product_ids", "any", [("categ_id", "=", self.categ_other.id)])],
            alice | bob,
        )
        self.assertMatch(
            [("mkt_product_ids", "not any", [("name", "=", "Rake")])],
            alice | bob | carol | dan | erin,
        )
        self.assertMatch([("mkt_product_ids", "ilike", "rake")], frank)
        # archived products still count
        self.book.active = False
        self.assertMatch(
            [("mkt_product_ids.name", "=", "Gardening book")],
            alice | bob,
            python=False,
        )

    def test_categories_bought(self):
        alice, bob, carol, dan, erin, frank = self.partners
        # the parent category matches the products of its subcategories
        self.assertMatch([("mkt_product_categ_ids", "in", self.categ_parent.ids)], alice | frank)
        self.assertMatch([("mkt_product_categ_ids", "in", self.categ_child.ids)], alice)
        self.assertMatch([("mkt_product_categ_ids", "in", self.categ_other.ids)], alice | bob)
        self.assertMatch(
            [("mkt_product_categ_ids", "not in", self.categ_parent.ids)],
            bob | carol | dan | erin,
        )
        self.assertMatch([("mkt_product_categ_ids.name", "=", "Garden")], alice | frank)
        self.assertMatch([("mkt_product_categ_ids", "=", False)], carol | dan | erin)

    def test_order_count(self):
        alice, bob, carol, dan, erin, frank = self.partners
        self.assertMatch([("mkt_order_count", "=", 2)], alice | bob)
        self.assertMatch([("mkt_order_count", "=", 0)], carol | dan | erin)
        self.assertMatch([("mkt_order_count", "=", False)], carol | dan | erin)
        self.assertMatch([("mkt_order_count", "!=", 0)], alice | bob | frank)
        self.assertMatch([("mkt_order_count", "in", [1, 2])], alice | bob | frank)
        self.assertMatch([("mkt_order_count", ">", 1)], alice | bob)
        self.assertMatch([("mkt_order_count", ">=", 1)], alice | bob | frank)
        self.assertMatch([("mkt_order_count", "<", 2)], carol | dan | erin | frank)
        self.assertMatch([("mkt_order_count", "<=", 1)], carol | dan | erin | frank)
        # a number typed as text
        self.assertMatch([("mkt_order_count", ">", "1")], alice | bob, python=False)

    def test_amount_spent(self):
        alice, bob, carol, dan, erin, frank = self.partners
        self.assertMatch([("mkt_amount_spent", ">", 300)], bob | frank)
        self.assertMatch([("mkt_amount_spent", ">=", 150)], alice | bob | frank)
        self.assertMatch([("mkt_amount_spent", "<", 150)], carol | dan | erin)
        self.assertMatch([("mkt_amount_spent", "<=", 150)], alice | carol | dan | erin)
        self.assertMatch([("mkt_amount_spent", "=", 400)], bob)
        self.assertMatch([("mkt_amount_spent", "!=", 0)], alice | bob | frank)
        self.assertMatch([("mkt_amount_spent", "=", 0)], carol | dan | erin)
        # periods: alice 100 (10 days) + 50 (60 days); bob 200 (200 days) - 100
        # (refund, 100 days); frank 1000 (500 days)
        self.assertMatch([("mkt_amount_spent_30d", ">", 0)], alice)
        self.assertMatch([("mkt_amount_spent_30d", "=", 100)], alice)
        self.assertMatch([("mkt_amount_spent_90d", ">=", 150)], alice)
        self.assertMatch([("mkt_amount_spent_365d", ">", 0)], alice | bob)
        self.assertMatch([("mkt_amount_spent_365d", "<", 0)], self.env["res.partner"])
        self.assertMatch([("mkt_amount_spent_365d", "=", 100)], bob)
        self.assertMatch([("mkt_amount_spent_365d", "<=", 100)], bob | carol | dan | erin | frank)
        # the same on fresh orders: Datetime.now() moved, the database's
        # clock did not (orders are dated relatively to it)
        self._sale_order(erin, [(self.rake, 1, 20)], days_ago=40)
        self.assertMatch([("mkt_amount_spent_30d", ">", 0)], alice)
        self.assertMatch([("mkt_amount_spent_90d", "=", 20)], erin)

    def test_last_purchase(self):
        alice, bob, carol, dan, erin, frank = self.partners
        now = self.now
        self.assertMatch([("mkt_last_purchase_date", ">=", now - timedelta(days=30))], alice)
        self.assertMatch([("mkt_last_purchase_date", ">", now - timedelta(days=300))], alice | bob)
        self.assertMatch([("mkt_last_purchase_date", "<", now - timedelta(days=100))], bob | frank)
        self.assertMatch([("mkt_last_purchase_date", "<=", now - timedelta(days=450))], frank)
        self.assertMatch([("mkt_last_purchase_date", "!=", False)], alice | bob | frank)
        self.assertMatch([("mkt_last_purchase_date", "=", False)], carol | dan | erin)
        self.assertMatch([("mkt_last_purchase_date", "=", self.alice_so.date_order)], alice)
        # date strings and relative dates, as the domain editor writes them
        self.assertMatch(
            [
                (
                    "mkt_last_purchase_date",
                    ">=",
                    fields.Date.to_string(now - timedelta(days=30)),
                )
            ],
            alice,
        )
        self.assertMatch([("mkt_last_purchase_date", ">=", "today -30d")], alice)
        # negation: never bought, or not lately
        self.assertMatch(
            ["!", ("mkt_last_purchase_date", ">=", now - timedelta(days=30))],
            bob | carol | dan | erin | frank,
        )

    def test_and_or(self):
        alice, bob, carol, dan, erin, frank = self.partners
        self.assertMatch(
            [
                "|",
                "&",
                ("mkt_product_ids", "in", self.book.ids),
                ("mkt_amount_spent_365d", ">", 120),
                "&",
                ("mkt_order_count", ">=", 1),
                ("mkt_last_purchase_date", "<", self.now - timedelta(days=400)),
            ],
            alice | frank,
        )
        self.assertMatch(
            [
                ("mkt_is_customer", "=", True),
                "|",
                ("mkt_order_count", "=", 0),
                ("mkt_product_ids", "in", self.rake.ids),
            ],
            carol | frank,
        )
        self.assertMatch(
            [
                "!",
                "|",
                ("mkt_product_ids", "in", self.book.ids),
                ("mkt_amount_spent", ">", 500),
            ],
            carol | dan | erin,
        )
        # two conditions on the same statistic share one join
        self.assertMatch(
            [("mkt_amount_spent", ">", 100), ("mkt_amount_spent", "<", 1000)],
            alice | bob,
        )
        self.assertMatch(
            [
                ("mkt_amount_spent", "<=", 100),
                "|",
                ("mkt_amount_spent", ">=", 1000),
                ("name", "=", "Erin"),
            ],
            erin,
        )
        # a filter on the statistics and on the contact's own fields
        self.assertMatch([("email", "ilike", "bob"), ("mkt_order_count", ">", 1)], bob)

    def test_leads(self):
        Lead = self.leads
        self.assertMatch([("mkt_product_ids", "in", self.tomato_seeds.ids)], self.lead_alice, Lead)
        self.assertMatch(
            [("mkt_product_categ_ids", "in", self.categ_other.ids)],
            self.lead_alice | self.lead_bob,
            Lead,
        )
        self.assertMatch([("mkt_is_customer", "=", True)], self.lead_alice | self.lead_bob, Lead)
        self.assertMatch([("mkt_is_customer", "=", False)], self.lead_anonymous, Lead)
        self.assertMatch([("mkt_amount_spent", ">", 300)], self.lead_bob, Lead)
        self.assertMatch([("mkt_amount_spent_30d", ">", 0)], self.lead_alice, Lead)
        # a lead without a contact has no purchase
        self.assertMatch([("mkt_order_count", "<", 2)], self.lead_anonymous, Lead)
        self.assertMatch([("mkt_last_purchase_date", "=", False)], self.lead_anonymous, Lead)
        self.assertMatch(
            [
                "|",
                ("mkt_product_ids", "in", self.book.ids),
                ("mkt_order_count", "=", 0),
            ],
            self.leads,
            Lead,
        )
        # through the partner_id path too
        self.assertMatch(
            [("partner_id.mkt_order_count", ">=", 2)],
            self.lead_alice | self.lead_bob,
            Lead,
        )

    def test_campaign_enrolment(self):
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Seeds buyers",
                "model_name": "res.partner",
                "domain": f"[('mkt_product_ids', 'in', [{self.book.id}])]",
            }
        )
        self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Tag",
                "activity_type": "server_action",
                "trigger_type": "begin",
                "interval_number": 0,
                "interval_type": "hours",
                "server_action_id": self.env["ir.actions.server"]
                .create(
                    {
                        "name": "Nothing",
                        "model_id": self.env["ir.model"]._get_id("res.partner"),
                        "state": "code",
                        "code": "records.write({})",
                    }
                )
                .id,
            }
        )
        self.assertEqual(campaign.record_count, 2)
        campaign.action_start()
        self.assertEqual(
            set(campaign.participant_ids.mapped("res_id")),
            set((self.alice | self.bob).ids),
        )
        # the "Customers" audience
        customers = self.env["mkt.campaign"].create(
            {
                "name": "Customers",
                "model_name": "res.partner",
                "domain": "[('mkt_is_customer', '=', True)]",
            }
        )
        self.assertEqual(
            self.env["res.partner"].search(customers._get_domain()) & self.partners,
            self.alice | self.bob | self.carol | self.frank,
        )
        # a campaign on leads
        leads = self.env["mkt.campaign"].create(
            {
                "name": "Leads of book buyers",
                "model_name": "crm.lead",
                "domain": f"[('mkt_product_ids', 'in', [{self.book.id}]), "
                "('mkt_amount_spent', '>', 200)]",
            }
        )
        self.assertEqual(self.env["crm.lead"].search(leads._get_domain()), self.lead_bob)

    def test_views(self):
        """The contact form shows the purchases, the search view has a
        "Customers" filter, and the domain editor can search every field."""
        views = self.env["res.partner"].get_views([(False, "form"), (False, "search")])
        self.assertIn('name="mkt_product_ids"', views["views"]["form"]["arch"])
        self.assertIn('name="mkt_customers"', views["views"]["search"]["arch"])
        for model in ("res.partner", "crm.lead"):
            description = self.env[model].fields_get(
                [
                    "mkt_is_customer",
                    "mkt_product_ids",
                    "mkt_product_categ_ids",
                    "mkt_order_count",
                    "mkt_amount_spent",
                    "mkt_amount_spent_30d",
                    "mkt_amount_spent_90d",
                    "mkt_amount_spent_365d",
                    "mkt_last_purchase_date",
                ],
                ["searchable", "relation"],
            )
            self.assertTrue(all(d["searchable"] for d in description.values()), model)
            self.assertEqual(description["mkt_product_ids"]["relation"], "product.product")

    def test_invalid_values(self):
        Partner = self.env["res.partner"]
        with self.assertRaisesRegex(UserError, "Amount Spent.*a number"):
            Partner.search([("mkt_amount_spent", ">", "lots")])
        with self.assertRaisesRegex(UserError, "Number of Orders.*a number"):
            Partner.search([("mkt_order_count", "=", "two")])
        with self.assertRaisesRegex(ValueError, "42"):
            Partner.search([("mkt_last_purchase_date", "<", 42)])
        with self.assertRaisesRegex(UserError, "Products Bought.*record ids"):
            Partner.search([("mkt_product_ids", "in", [1.5])])
        with self.assertRaises(UserError):
            Partner.search([("mkt_order_count", "like", "3")])
        # a campaign filter: a ValidationError naming the field
        with self.assertRaisesRegex(ValidationError, "Amount Spent \\(last 30 days\\).*a number"):
            self.env["mkt.campaign"].create(
                {
                    "name": "Bad",
                    "model_name": "res.partner",
                    "domain": "[('mkt_amount_spent_30d', '>', 'a lot')]",
                }
            )
