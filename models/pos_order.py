from odoo import models


class PosOrder(models.Model):
    _inherit = "pos.order"

    # purchase statistics of the contacts' audience filters (models/res_partner.py):
    # index-only scans in customer order over the paid and posted orders
    _mkt_partner_purchase_idx = models.Index(
        "(partner_id) INCLUDE (date_order, amount_total, currency_rate, is_refund, "
        "company_id) "
        "WHERE state IN ('paid', 'done') AND partner_id IS NOT NULL"
    )

    def action_mkt_send_email(self):
        """Extra Info tab: a one-off marketing e-mail to this order's customer."""
        return self._mkt_send_action("email")

    def action_mkt_send_whatsapp(self):
        """Extra Info tab: an approved WhatsApp template to this order's customer."""
        return self._mkt_send_action("whatsapp")

    def _mkt_send_action(self, channel):
        """The Send Marketing Message composer of the order list, for this
        order alone and on this channel."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mkt_campaign.mkt_pos_send_action"
        )
        action["context"] = {
            "active_model": "pos.order", "active_ids": self.ids,
            "default_order_ids": self.ids, "default_channel": channel,
            "default_name": self.env._(
                "Message to %(customer)s (%(order)s)",
                customer=self.partner_id.name or self.email or self.mobile or "",
                order=self.name,
            ),
        }
        return action
