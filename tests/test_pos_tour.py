from odoo.tests import HttpCase, tagged

from odoo.addons.point_of_sale.tests.common import TestPoSCommon

from .test_tour import PosOrderTourMixin
from .test_whatsapp import WhatsAppMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPosOrderWhatsAppTour(WhatsAppMixin, PosOrderTourMixin, TestPoSCommon, HttpCase):
    def test_pos_order_form_whatsapp(self):
        """Point of Sale > an order > Extra Info > WhatsApp icon: an approved
        template of POS orders is chosen, previewed for that order and sent to
        its customer by a one-step campaign."""
        self._start_whatsapp()
        self.env.user.group_ids |= self.env.ref("mkt_campaign.group_mkt_campaign_manager")
        customer = self.env["res.partner"].create(
            {"name": "Tour Customer", "phone": "+32470999999"}
        )
        order = self._tour_order(customer, groups=["mkt_campaign.group_mkt_campaign_user"])
        self._approved_template(
            name="Order ready",
            template_name="order_ready",
            model_id=self.env["ir.model"]._get_id("pos.order"),
            phone_field="partner_id.phone",
            body="Hi {{1}}, order {{2}} is ready.",
            variable_ids=[
                (0, 0, {"index": 1, "field_path": "partner_id.name"}),
                (0, 0, {"index": 2, "field_path": "name"}),
            ],
        )
        self.start_tour(
            f"/odoo/action-point_of_sale.action_pos_pos_form/{order.id}",
            "mkt_campaign_pos_order_whatsapp",
            login="admin",
        )
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
