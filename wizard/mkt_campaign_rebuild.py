from odoo import api, fields, models


class MktCampaignRebuild(models.TransientModel):
    """Rebuild Queue of a running campaign (mkt.campaign._rebuild_queue)."""

    _name = "mkt.campaign.rebuild"
    _description = "Rebuild the Queue of a Marketing Campaign"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade")
    requeue_failed = fields.Boolean(
        "Requeue Failed Steps",
        help="Failed steps are scheduled again now, as Retry does. Uncertain ones (interrupted "
        "while sending: they may have been delivered) are left alone.",
    )
    uncertain_count = fields.Integer(
        "Uncertain Steps",
        compute="_compute_uncertain_count",
        help="Failed steps of the campaign interrupted while their message was being sent: "
        "they may have been delivered.",
    )
    requeue_uncertain = fields.Boolean(
        "Also Requeue Uncertain Steps",
        help="Requeue the uncertain failed steps too. Their message may have been delivered: "
        "their recipients may receive it twice.",
    )

    @api.depends("campaign_id")
    def _compute_uncertain_count(self):
        counts = dict(
            self.env["mkt.trace"]._read_group(
                [
                    ("campaign_id", "in", self.campaign_id.ids),
                    ("state", "=", "failed"),
                    ("is_uncertain", "=", True),
                ],
                ["campaign_id"],
                ["__count"],
            )
        )
        for wizard in self:
            wizard.uncertain_count = counts.get(wizard.campaign_id, 0)

    def action_rebuild(self):
        self.ensure_one()
        counts = self.campaign_id._rebuild_queue(
            requeue_failed=self.requeue_failed,
            requeue_uncertain=self.requeue_failed and self.requeue_uncertain,
        )
        message = self.env._(
            "%(canceled)s steps canceled, %(replanned)s re-planned, %(added)s added, "
            "%(requeued)s failed steps requeued.",
            **counts,
        )
        if self.requeue_failed:
            note = self.env["mkt.campaign"]._rebuild_uncertain_note(counts)
            message = f"{message} {note}" if note else message
        return self.env["mkt.campaign"]._sent_notification(self.env._("Queue rebuilt"), message)

    def action_view_uncertain(self):
        """The uncertain failed steps of the campaign, in the Send Queue."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mkt_campaign.mkt_trace_action")
        action["domain"] = [("campaign_id", "=", self.campaign_id.id)]
        action["context"] = {"search_default_filter_uncertain": 1}
        return action
