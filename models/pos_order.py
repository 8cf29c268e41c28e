from odoo import models
from odoo.exceptions import UserError
from odoo.tools import email_normalize


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
        action = self.env["ir.actions.act_window"]._for_xml_id("mkt_campaign.mkt_pos_send_action")
        action["context"] = {
            "active_model": "pos.order",
            "active_ids": self.ids,
            "default_order_ids": self.ids,
            "default_channel": channel,
            "default_name": self.env._(
                "Message to %(customer)s (%(order)s)",
                customer=self.partner_id.name or self.email or self.mobile or "",
                order=self.name,
            ),
        }
        return action

    # ------------------------------------------------------------------
    # Receipts feed the contacts (Point of Sale setting)
    # ------------------------------------------------------------------

    def action_send_receipt(self, email, ticket_image, basic_image):
        if self.config_id.mkt_receipt_contacts:
            email = self._mkt_store_receipt_contact(email=email)
        return super().action_send_receipt(email, ticket_image, basic_image)

    def action_sent_message_on_sms(self, phone, _, basic_image=False):
        config = self.config_id
        if (
            self
            and phone
            and config.mkt_receipt_contacts
            and config.module_pos_sms
            and config.sms_receipt_template_id
        ):
            phone = self._mkt_store_receipt_contact(phone=phone)
        return super().action_sent_message_on_sms(phone, _, basic_image=basic_image)

    def _mkt_store_receipt_contact(self, email=None, phone=None):
        """Keep the e-mail or number a receipt is sent to on the order and,
        where it has none, on its customer: e-mails normalised, numbers in
        E.164 read with the shop's country. An invalid one is refused before
        anything is stored or sent. Returns the normalised value."""
        self.ensure_one()
        if email is not None:
            value = email_normalize(email or "")
            if not value:
                raise UserError(
                    self.env._(
                        "%(email)s is not a valid e-mail address: the receipt was not sent.",
                        email=email or "",
                    )
                )
            order_field, partner_field = "email", "email"
        else:
            value = self._phone_format(
                number=phone,
                country=self.company_id.country_id,
                force_format="E164",
                raise_exception=False,
            )
            if not value:
                raise UserError(
                    self.env._(
                        "%(number)s is not a valid phone number for %(country)s: the receipt "
                        "was not sent.",
                        number=phone,
                        country=self.company_id.country_id.name or "",
                    )
                )
            order_field, partner_field = "mobile", "phone"
        self[order_field] = value
        partner = self.partner_id
        # sudo: POS users may not edit contacts; only an empty field of the
        # order's own customer, in the user's companies, is completed
        if (
            partner
            and not partner[partner_field]
            and (not partner.company_id or partner.company_id in self.env.companies)
        ):
            partner.sudo()[partner_field] = value
        return value
