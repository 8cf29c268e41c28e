from odoo import fields, models
from odoo.tools import SQL


class MktCampaign(models.Model):
    """Payload mapping of a campaign: fields of the target copied into each
    participant's payload at enrolment, set-based."""

    _inherit = "mkt.campaign"

    payload_field_ids = fields.One2many(
        "mkt.campaign.payload.field",
        "campaign_id",
        "Payload Mapping",
        copy=True,
        help="At enrolment, these fields of each record are copied into its "
        "participant's payload, under their key.",
    )

    def _enrol(self, now):
        count = super()._enrol(now)
        if count and self.payload_field_ids:
            self._apply_payload_mapping(now)
        return count

    def _apply_payload_mapping(self, now):
        """Fill the payload of the participants enrolled at ``now`` (one
        enrolment of this campaign) from the mapping: one UPDATE … FROM the
        target table, merged over what an integration may have set; empty
        values are left out, so that a message's default applies."""
        self.ensure_one()
        Model = self.env[self.model_name]
        pairs = []
        for line in self.payload_field_ids:
            field = Model._fields.get(line.field_id.name)
            if not field or not field.store or not field.column_type:
                continue
            column = SQL("t.%s", SQL.identifier(field.name))
            if field.translate:
                column = SQL("(t.%s->>'en_US')", SQL.identifier(field.name))
            pairs.append(SQL("%s::text, %s", line.key, column))
        if not pairs:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            UPDATE mkt_participant p
               SET payload = COALESCE(p.payload, '{}'::jsonb)
                             || jsonb_strip_nulls(jsonb_build_object(%(pairs)s))
              FROM %(table)s t
             WHERE t.id = p.res_id AND p.campaign_id = %(campaign)s
               AND p.enrolled_date = %(now)s
            """,
                pairs=SQL(", ").join(pairs),
                table=SQL.identifier(Model._table),
                campaign=self.id,
                now=now,
            )
        )
        self.env["mkt.participant"].invalidate_model(["payload"])
