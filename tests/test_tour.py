from dateutil.relativedelta import relativedelta

from odoo import Command
from odoo.tests import HttpCase, tagged

from odoo.addons.point_of_sale.tests.common import TestPoSCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestCampaignTour(HttpCase):
    def test_create_and_launch_campaign(self):
        """A marketing manager builds a one-step campaign in the Marketing app and
        launches it: the contacts matching the default filter are enrolled."""
        self.env["res.partner"].create(
            [{"name": f"Tour contact {i}", "email": f"tour{i}@example.com"} for i in range(3)]
        )
        self.start_tour("/odoo", "mkt_campaign_create_and_launch", login="admin")
        campaign = self.env["mkt.campaign"].search([("name", "=", "Tour Spring Sale")])
        self.assertEqual(campaign.state, "running")
        self.assertEqual(len(campaign.activity_ids), 1)
        step = campaign.activity_ids
        self.assertEqual(step.mailing_id.subject, "Spring is here, {{ object.name }}")
        self.assertIn("Our spring sale starts today.", step.mailing_id.body_html)
        self.assertGreaterEqual(campaign.participant_count, 3)
        self.assertEqual(
            len(campaign.participant_ids.trace_ids),
            campaign.participant_count,
            "every participant has its first step queued",
        )

    def test_campaign_from_template(self):
        """A marketing manager starts from a template and sets the budget in the
        Results tab."""
        self.start_tour("/odoo", "mkt_campaign_from_template", login="admin")
        campaign = self.env["mkt.campaign"].search([("name", "=", "Prioritize Hot Leads")])
        self.assertEqual(len(campaign), 1)
        self.assertEqual((campaign.state, campaign.model_name), ("draft", "crm.lead"))
        self.assertEqual(campaign.budget, 250)
        self.assertEqual(len(campaign.activity_ids), 2)

    def test_sms_step_from_campaign_form(self):
        """An SMS step is added in the campaign form's workflow and saved (its
        hidden e-mail subject no longer blocks the save)."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Tour SMS",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
            }
        )
        self.start_tour(
            f"/odoo/action-mkt_campaign.mkt_campaign_action/{campaign.id}",
            "mkt_campaign_sms_step",
            login="admin",
        )
        step = campaign.activity_ids
        self.assertEqual((step.name, step.activity_type), ("Text reminder", "sms"))
        self.assertEqual(
            step.mailing_id.body_plaintext, "Hello {{ object.name }}, the spring sale ends tonight"
        )

    def test_rebuild_and_message_participants(self):
        """On a running campaign whose workflow changed, the form's banner
        rebuilds the queue; the participants list messages a participant; the
        queue sends a step now."""
        alice, bob = self.env["res.partner"].create(
            [
                {"name": "Tour Alice", "email": "tour.alice@example.com"},
                {"name": "Tour Bob", "email": "tour.bob@example.com"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Tour Manual",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "domain": repr([("id", "in", (alice | bob).ids)]),
                "activity_ids": [
                    Command.create(
                        {
                            "name": "Welcome",
                            "subject": "Welcome",
                            "body_html": "<p>Welcome</p>",
                            "interval_number": 2,
                            "interval_type": "days",
                        }
                    )
                ],
            }
        )
        campaign.action_start()
        campaign.activity_ids.interval_number = 3
        self.assertTrue(campaign.queue_outdated)
        self.start_tour(
            f"/odoo/action-mkt_campaign.mkt_campaign_action/{campaign.id}",
            "mkt_campaign_manual_sending",
            login="admin",
        )
        self.assertFalse(campaign.queue_outdated)
        welcome = campaign.activity_ids.trace_ids
        for trace in welcome.filtered(lambda t: t.res_id == alice.id):
            self.assertEqual(
                trace.schedule_date, trace.participant_id.enrolled_date + relativedelta(days=3)
            )
        one_off = campaign.one_off_activity_ids
        self.assertEqual(one_off.trace_ids.mapped("res_id"), alice.ids)
        self.assertEqual(one_off.mailing_id.subject, "Your gift, {{ object.name }}")
        bob_welcome = welcome.filtered(lambda t: t.res_id == bob.id)
        self.assertTrue(bob_welcome.is_confirmed)
        self.assertLess(
            bob_welcome.schedule_date,
            bob_welcome.participant_id.enrolled_date + relativedelta(days=1),
            "Send Now: due now",
        )


class PosOrderTourMixin:
    def _tour_order(self, customer, groups=()):
        """An order of ``customer`` in an open session of the test shop, and
        the admin (who runs the tour) working in the shop's company as a POS
        manager (and ``groups``)."""
        config = self.basic_config
        config.open_ui()
        session = config.current_session_id
        session.set_opening_control(0, None)
        product = self.env["product.product"].create(
            {
                "name": "Tour pot",
                "type": "consu",
                "available_in_pos": True,
                "taxes_id": [Command.clear()],
            }
        )
        order = self.env["pos.order"].create(
            {
                "session_id": session.id,
                "partner_id": customer.id,
                "company_id": self.env.company.id,
                "amount_total": 10,
                "amount_paid": 10,
                "amount_tax": 0,
                "amount_return": 0,
                "lines": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "qty": 1,
                            "price_unit": 10,
                            "price_subtotal": 10,
                            "price_subtotal_incl": 10,
                            "tax_ids": [],
                        }
                    )
                ],
            }
        )
        company = self.env.company
        self.env.ref("base.user_admin").write(
            {
                "group_ids": [
                    Command.link(self.env.ref(group).id)
                    for group in ("point_of_sale.group_pos_manager", *groups)
                ],
                "company_ids": [Command.link(company.id)],
                "company_id": company.id,
            }
        )
        return order


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPosOrderTour(PosOrderTourMixin, TestPoSCommon, HttpCase):
    def test_pos_order_form_email(self):
        """From a POS order's Extra Info tab, a marketing e-mail goes to its
        customer: the composer opens for that order, the message is sent by a
        one-step campaign."""
        customer = self.env["res.partner"].create(
            {"name": "Tour Customer", "email": "tour.customer@example.com"}
        )
        order = self._tour_order(customer)
        self.start_tour(
            f"/odoo/action-point_of_sale.action_pos_pos_form/{order.id}",
            "mkt_campaign_pos_order_email",
            login="admin",
        )
        campaign = self.env["mkt.campaign"].sudo().search([("name", "ilike", "Tour Customer")])
        self.assertEqual(len(campaign), 1)
        self.assertEqual(campaign.participant_ids.mapped("res_id"), customer.ids)
        self.assertEqual(
            campaign.activity_ids.mailing_id.subject, "A gift for you, {{ object.name }}"
        )
