from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.fields import Domain
from odoo.tools import SQL

ENGAGEMENT_SQL = {
    "any": SQL(""),
    "opened": SQL(
        "AND EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id"
        " AND t.open_datetime IS NOT NULL)"
    ),
    "not_opened": SQL(
        "AND NOT EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id"
        " AND t.open_datetime IS NOT NULL)"
    ),
    "clicked": SQL(
        "AND EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id"
        " AND t.click_datetime IS NOT NULL)"
    ),
    "not_clicked": SQL(
        "AND NOT EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id"
        " AND t.click_datetime IS NOT NULL)"
    ),
}


class MktCampaignPrevious(models.Model):
    _name = "mkt.campaign.previous"
    _description = "Marketing Campaign Audience: Previous Campaign Condition"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade", index=True)
    condition = fields.Selection(
        [("in", "Is a participant of"), ("not_in", "Is not a participant of")],
        required=True,
        default="not_in",
    )
    previous_campaign_id = fields.Many2one(
        "mkt.campaign",
        required=True,
        ondelete="cascade",
        domain="[('id', '!=', campaign_id)]",
    )
    engagement = fields.Selection(
        [
            ("any", "whatever they did"),
            ("opened", "and opened a message"),
            ("not_opened", "and opened no message"),
            ("clicked", "and clicked a link"),
            ("not_clicked", "and clicked no link"),
        ],
        required=True,
        default="any",
    )

    @api.constrains("previous_campaign_id", "campaign_id")
    def _check_same_target(self):
        for line in self:
            previous, campaign = line.previous_campaign_id, line.campaign_id
            if previous.model_id != campaign.model_id:
                raise ValidationError(
                    self.env._(
                        "Campaign %(previous)s targets %(other)s, not %(target)s: it cannot "
                        "limit the audience of %(campaign)s.",
                        previous=previous.name,
                        other=previous.model_id.name,
                        target=campaign.model_id.name,
                        campaign=campaign.name,
                    )
                )

    def _get_domain(self):
        self.ensure_one()
        subquery = SQL(
            "SELECT p.res_id FROM mkt_participant p WHERE p.campaign_id = %s AND NOT p.is_test %s",
            self.previous_campaign_id.id,
            ENGAGEMENT_SQL[self.engagement],
        )
        return Domain("id", "in" if self.condition == "in" else "not in", subquery)
