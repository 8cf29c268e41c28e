from datetime import timedelta

from werkzeug.urls import url_encode

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError

OPTIN_SCOPE = "mkt_campaign-optin"
OPTIN_MODELS = ("res.partner", "crm.lead", "mailing.contact")
# how long a confirmation link stays valid (ir.config_parameter
# mkt_campaign.optin_link_days overrides it)
OPTIN_LINK_DAYS_DEFAULT = 30


class MktOptinMixin(models.AbstractModel):
    """Double opt-in: the record confirms its subscription from a signed link,
    which campaign e-mails offer with ``<t t-out="object.mkt_optin_url"/>``.
    The link opens a page whose button confirms (a POST): mail scanners that
    follow links confirm nothing. The token is signed with the database
    secret over the record, its e-mail address and an expiry date."""

    _name = "mkt.optin.mixin"
    _description = "Marketing Opt-in"

    mkt_optin_date = fields.Datetime(
        "Opt-in Confirmed On",
        copy=False,
        tracking=True,
        help="When the contact confirmed the subscription (double opt-in). Campaigns "
        "that require a confirmed opt-in write only to confirmed contacts. Set by the "
        "contact's confirmation; only marketing campaign managers can change it.",
    )
    mkt_optin_url = fields.Char("Opt-in Confirmation Link", compute="_compute_mkt_optin_url")

    def _compute_mkt_optin_url(self):
        for record in self:
            if not record.id:
                record.mkt_optin_url = False
                continue
            record.mkt_optin_url = "%s/mkt_campaign/optin?%s" % (
                record.get_base_url(),
                url_encode(
                    {
                        "token": record._mkt_optin_token(),
                    }
                ),
            )

    @api.model_create_multi
    def create(self, vals_list):
        if any(vals.get("mkt_optin_date") for vals in vals_list):
            self._mkt_check_optin_date_access()
        return super().create(vals_list)

    def write(self, vals):
        if "mkt_optin_date" in vals:
            new_date = fields.Datetime.to_datetime(vals["mkt_optin_date"]) or False
            if any(record.mkt_optin_date != new_date for record in self):
                self._mkt_check_optin_date_access()
        return super().write(vals)

    def _mkt_check_optin_date_access(self):
        """The opt-in date is the recipient's consent: only the confirmation
        (``_mkt_optin_confirm``) and marketing campaign managers set it."""
        if self.env.su or self.env.user.has_group("mkt_campaign.group_mkt_campaign_manager"):
            return
        raise AccessError(
            self.env._(
                "Only the contact, through the confirmation link, or a "
                "marketing campaign manager can set the opt-in confirmation date."
            )
        )

    def _mkt_optin_email(self):
        """The record's normalized e-mail address, which the token carries."""
        self.ensure_one()
        email = self[self._primary_email] if self._primary_email in self._fields else False
        return tools.email_normalize(email) or (email or "").strip().lower()

    def _mkt_optin_token(self):
        """A token naming the record and its address, valid for
        ``mkt_campaign.optin_link_days`` days (default 30)."""
        self.ensure_one()
        try:
            # ir.config_parameter is admin-only: one known key
            days = int(
                self.env["ir.config_parameter"]
                .sudo()
                .get_param("mkt_campaign.optin_link_days", OPTIN_LINK_DAYS_DEFAULT)
            )
        except ValueError:
            days = OPTIN_LINK_DAYS_DEFAULT
        return tools.hash_sign(
            self.env(su=True),
            OPTIN_SCOPE,
            [self._name, self.id, self._mkt_optin_email()],
            expiration=timedelta(days=max(days, 1)),
        )

    @api.model
    def _mkt_optin_verify_token(self, token):
        """The record a token was signed for, when the signature holds, the
        token has not expired and the record still has the address it was
        signed for; else an empty value."""
        if not token or not isinstance(token, str) or len(token) > 2048:
            return False
        try:
            values = tools.verify_hash_signed(self.env(su=True), OPTIN_SCOPE, token)
        except (ValueError, TypeError, UnicodeDecodeError):
            return False
        if not isinstance(values, list) or len(values) != 3:
            return False
        model, res_id, email = values
        if model not in OPTIN_MODELS or not isinstance(res_id, int) or not email:
            return False
        record = self.env[model].browse(res_id).exists()
        if not record or record._mkt_optin_email() != email:
            return False
        return record

    def _mkt_optin_confirm(self):
        """The contact confirmed through the signed link (checked by the
        caller): record the date once."""
        # sudo: the recipient confirming is anonymous; the token named the record
        todo = self.sudo().filtered(lambda record: not record.mkt_optin_date)
        todo.write({"mkt_optin_date": fields.Datetime.now()})
        return True
