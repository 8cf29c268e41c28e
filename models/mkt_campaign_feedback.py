from odoo import fields, models
from odoo.tools import SQL


class MktCampaign(models.Model):
    """Provider feedback in a campaign's Results: how many messages were
    confirmed delivered, bounced softly, complained about, blocked or led to
    an unsubscription at the provider (test participants never count)."""

    _inherit = "mkt.campaign"

    delivered_count = fields.Integer("Delivered", compute="_compute_feedback_counts")
    soft_bounced_count = fields.Integer("Soft Bounces", compute="_compute_feedback_counts")
    complained_count = fields.Integer(
        "Spam Complaints",
        compute="_compute_feedback_counts",
        help="Messages the recipient marked as spam: the address was blocklisted.",
    )
    blocked_count = fields.Integer("Blocked", compute="_compute_feedback_counts")
    unsubscribed_count = fields.Integer(
        "Unsubscribed at Provider", compute="_compute_feedback_counts"
    )

    def _compute_feedback_counts(self):
        counts = {}
        if self.ids:
            self.env.flush_all()
            # every feedback a message got counts once per kind (a message
            # delivered, then complained about, counts in both)
            self.env.cr.execute(
                SQL(
                    """
                SELECT t.campaign_id, at.outcome, count(DISTINCT t.id)
                  FROM mkt_trace_attempt at
                  JOIN mkt_trace t ON t.id = at.trace_id
                 WHERE t.campaign_id = ANY(%s) AND t.is_test IS NOT TRUE
                   AND at.outcome IN ('delivered', 'bounced_soft', 'complained',
                                      'blocked', 'unsubscribed')
                 GROUP BY t.campaign_id, at.outcome
                """,
                    self.ids,
                )
            )
            counts = {(cid, outcome): count for cid, outcome, count in self.env.cr.fetchall()}
        for campaign in self:
            campaign.delivered_count = counts.get((campaign.id, "delivered"), 0)
            campaign.soft_bounced_count = counts.get((campaign.id, "bounced_soft"), 0)
            campaign.complained_count = counts.get((campaign.id, "complained"), 0)
            campaign.blocked_count = counts.get((campaign.id, "blocked"), 0)
            campaign.unsubscribed_count = counts.get((campaign.id, "unsubscribed"), 0)
