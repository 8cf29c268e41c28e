import json

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError

# a payload is metadata for messages, not a document store
PAYLOAD_MAX_BYTES = 64 * 1024


class MktParticipant(models.Model):
    """Per-recipient payload: a JSON object set by integrations (external API)
    or at enrolment from the campaign's field mapping, read in messages as
    ``object_payload`` (mail_render_mixin.py)."""

    _inherit = "mkt.participant"

    payload = fields.Json(
        "Payload Data",
        help="Custom data of this recipient (a JSON object) set by integrations "
        "through the external API or at enrolment from the campaign's payload "
        "mapping. Messages read it as {{ object_payload.get('key', '') }}.",
    )
    payload_text = fields.Text("Payload", compute="_compute_payload_text")

    @api.depends("payload")
    def _compute_payload_text(self):
        for participant in self:
            payload = participant.payload
            participant.payload_text = (
                json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True, default=str)
                if payload
                else False
            )

    @api.constrains("payload")
    def _check_payload(self):
        for participant in self:
            payload = participant.payload
            if payload in (None, False):
                continue
            if not isinstance(payload, dict):
                raise ValidationError(
                    self.env._(
                        "The payload of %(participant)s must be a JSON object "
                        '(e.g. {"coupon": "WELCOME10"}).',
                        participant=participant.display_name,
                    )
                )
            if len(json.dumps(payload, default=str)) > PAYLOAD_MAX_BYTES:
                raise ValidationError(
                    self.env._(
                        "The payload of %(participant)s is larger than %(size)s kB.",
                        participant=participant.display_name,
                        size=PAYLOAD_MAX_BYTES // 1024,
                    )
                )

    def write(self, vals):
        # Campaign users may write the payload of the participants they can
        # see (access rights + the company record rule); every other field is
        # the engine's, written as superuser or in SQL.
        if not self.env.su and set(vals) - {"payload"}:
            raise AccessError(
                self.env._(
                    "Only the payload of a participant can be changed: the rest is kept "
                    "by the campaign."
                )
            )
        return super().write(vals)
