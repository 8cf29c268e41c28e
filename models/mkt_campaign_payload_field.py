from odoo import api, fields, models
from odoo.exceptions import ValidationError

# field types whose stored column becomes a JSON value as it is
PAYLOAD_FIELD_TYPES = [
    "char",
    "text",
    "integer",
    "float",
    "monetary",
    "boolean",
    "date",
    "datetime",
    "selection",
    "many2one",
]


class MktCampaignPayloadField(models.Model):
    """One line of a campaign's payload mapping: at enrolment, the value of a
    field of the target record is copied into the participant's payload
    under a key (mkt_campaign_payload.py, one UPDATE per enrolment)."""

    _name = "mkt.campaign.payload.field"
    _description = "Marketing Campaign Payload Mapping"
    _order = "campaign_id, sequence, id"

    sequence = fields.Integer(default=10)
    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade", index=True)
    model_name = fields.Char(related="campaign_id.model_name")
    field_id = fields.Many2one(
        "ir.model.fields",
        required=True,
        ondelete="cascade",
        domain="[('model', '=', model_name), ('store', '=', True), ('ttype', 'in', %s)]"
        % PAYLOAD_FIELD_TYPES,
        help="Field of the campaign's records copied into the participant's payload.",
    )
    key = fields.Char(
        "Payload Key",
        required=True,
        help="Read in messages as {{ object_payload.get('key', '') }}.",
    )

    _key_unique = models.Constraint(
        "UNIQUE (campaign_id, key)", "A payload key is mapped once per campaign."
    )

    @api.onchange("field_id")
    def _onchange_field_id(self):
        if self.field_id and not self.key:
            self.key = self.field_id.name

    @api.constrains("field_id", "key", "campaign_id")
    def _check_field(self):
        for line in self:
            field = line.field_id
            if field.model != line.campaign_id.model_name:
                raise ValidationError(
                    self.env._(
                        "Field %(field)s is not a field of the campaign's records.",
                        field=field.field_description,
                    )
                )
            if not field.store or field.ttype not in PAYLOAD_FIELD_TYPES:
                raise ValidationError(
                    self.env._(
                        "Field %(field)s cannot be copied into a payload: choose a stored "
                        "text, number, date, yes/no, selection or many2one field.",
                        field=field.field_description,
                    )
                )
            if field.groups:
                # the mapping is copied in SQL: a field restricted to some
                # groups would leak to every message author
                raise ValidationError(
                    self.env._(
                        "Field %(field)s is restricted to some user groups: it cannot be "
                        "copied into a payload.",
                        field=field.field_description,
                    )
                )
            if not (line.key or "").strip() or len(line.key) > 64:
                raise ValidationError(
                    self.env._(
                        "The payload key of field %(field)s must be a short name "
                        "(at most 64 characters).",
                        field=field.field_description,
                    )
                )
