from odoo import fields, models


class MktCampaignRebuild(models.TransientModel):
    """Rebuild Queue of a running campaign (mkt.campaign._rebuild_queue)."""

    _name = "mkt.campaign.rebuild"
    _description = "Rebuild the Queue of a Marketing Campaign"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade")
    requeue_failed = fields.Boolean(
        "Requeue Failed Steps",
        help="Failed steps are scheduled again now, as Retry does. A message whose "
        "sending was interrupted may have reached its recipient: leave this off when "
        "the queue shows such steps, and retry them one by one once checked.",
    )

    def action_rebuild(self):
        self.ensure_one()
        counts = self.campaign_id._rebuild_queue(requeue_failed=self.requeue_failed)
        return self.env["mkt.campaign"]._sent_notification(
            self.env._("Queue rebuilt"),
            self.env._(
                "%(canceled)s steps canceled, %(replanned)s re-planned, %(added)s added, "
                "%(requeued)s failed steps requeued.",
                **counts,
            ),
        )
