from odoo import Command
from odoo.addons.point_of_sale.tests.common import TestPoSCommon
from odoo.tests import HttpCase, tagged

from .test_whatsapp import WhatsAppMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPosOrderWhatsAppTour(WhatsAppMixin, TestPoSCommon, HttpCase):

    def test_pos_order_form_whatsapp(self):
        """Point of Sale > an order > Extra Info > WhatsApp icon: an approved
        template of POS orders is chosen, previewed for that order and sent to
        its customer by a one-step campaign."""
        self._start_whatsapp()
        self.env.user.group_ids |= self.env.ref("mkt_campaign.group_mkt_campaign_manager")
        config = self.basic_config
        config.open_ui()
        session = config.current_session_id
        session.set_opening_control(0, None)
        customer = self.env["res.partner"].create(
            {"name": "Tour Customer", "phone": "+32470999999"})
        product = self.env["product.product"].create({
            "name": "Tour pot", "type": "consu", "available_in_pos": True,
            "taxes_id": [Command.clear()],
        })
        order = self.env["pos.order"].create({
            "session_id": session.id, "partner_id": customer.id,
            "company_id": self.env.company.id,
            "amount_total": 10, "amount_paid": 10, "amount_tax": 0, "amount_return": 0,
            "lines": [Command.create({
                "product_id": product.id, "qty": 1, "price_unit": 10,
                "price_subtotal": 10, "price_subtotal_incl": 10, "tax_ids": [],
            })],
        })
        self._approved_template(
            name="Order ready", template_name="order_ready",
            model_id=self.env["ir.model"]._get_id("pos.order"), phone_field="partner_id.phone",
            body="Hi {{1}}, order {{2}} is ready.",
            variable_ids=[(0, 0, {"index": 1, "field_path": "partner_id.name"}),
                          (0, 0, {"index": 2, "field_path": "name"})],
        )
        company = self.env.company
        self.env.ref("base.user_admin").write({
            "group_ids": [Command.link(self.env.ref("point_of_sale.group_pos_manager").id),
                          Command.link(self.env.ref("mkt_campaign.group_mkt_campaign_user").id)],
            "company_ids": [Command.link(company.id)], "company_id": company.id,
        })
        self.start_tour(f"/odoo/action-point_of_sale.action_pos_pos_form/{order.id}",
                        "mkt_campaign_pos_order_whatsapp", login="admin")
        campaign = self.env["mkt.campaign"].sudo().search([("name", "ilike", "Tour Customer")])
        self.assertEqual(len(campaign), 1)
        self.assertEqual(campaign.model_name, "pos.order")
        self.assertEqual(campaign.participant_ids.mapped("res_id"), order.ids)
        self.env["mkt.trace"].sudo()._cron_execute_activities()
        self.assertEqual([m["to"] for m in self.wa.messages], ["+32470999999"])
        self.assertEqual(
            [p["text"] for p in self.wa.messages[0]["template"]["components"][0]["parameters"]],
            ["Tour Customer", order.name],
        )
