from odoo import fields, models, tools
from odoo.tools import SQL


class MktCampaignReport(models.Model):
    """Statistics of campaigns: the queue's rows counted by campaign, step,
    channel and state, with their tracking (opened, clicked, replied,
    bounced). Test participants never count. The campaign's delivery figures
    (models/mkt_campaign_results.py) are read from it."""

    _name = "mkt.campaign.report"
    _description = "Marketing Campaign Statistics"
    _auto = False
    _order = "campaign_id desc, activity_id"
    _rec_name = "activity_id"
    # searching the view flushes what it reads
    _depends = {
        "mkt.trace": [
            "campaign_id",
            "activity_id",
            "state",
            "is_test",
            "open_datetime",
            "click_datetime",
            "reply_datetime",
            "bounce_datetime",
        ],
        "mkt.activity": ["activity_type"],
        "mkt.campaign": ["company_id", "utm_campaign_id"],
    }

    campaign_id = fields.Many2one("mkt.campaign", readonly=True)
    activity_id = fields.Many2one("mkt.activity", "Step", readonly=True)
    activity_type = fields.Selection(
        [
            ("email", "E-mail"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("push", "Push Notification"),
            ("server_action", "Server Action"),
        ],
        "Channel",
        readonly=True,
    )
    state = fields.Selection(
        [
            ("scheduled", "Scheduled"),
            ("processing", "Processing"),
            ("processed", "Processed"),
            ("rejected", "Rejected"),
            ("failed", "Failed"),
            ("canceled", "Canceled"),
        ],
        "Status",
        readonly=True,
    )
    company_id = fields.Many2one("res.company", readonly=True)
    utm_campaign_id = fields.Many2one("utm.campaign", "UTM Campaign", readonly=True)
    trace_count = fields.Integer("Steps", readonly=True)
    sent_count = fields.Integer(
        "Sent", readonly=True, help="Messages (e-mail, SMS, WhatsApp, push) sent."
    )
    opened_count = fields.Integer(
        "Opened", readonly=True, help="E-mails opened, WhatsApp messages read."
    )
    clicked_count = fields.Integer("Clicked", readonly=True)
    replied_count = fields.Integer("Replied", readonly=True)
    bounced_count = fields.Integer("Bounced", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        # tracking counts only on steps done (a step failed after an open, e.g.
        # a WhatsApp message reported undeliverable, is not an engagement)
        self.env.cr.execute(
            SQL(
                """
            CREATE OR REPLACE VIEW %(table)s AS (
                SELECT min(t.id) AS id,
                       t.campaign_id,
                       t.activity_id,
                       a.activity_type,
                       t.state,
                       c.company_id,
                       c.utm_campaign_id,
                       count(*)::int AS trace_count,
                       count(*) FILTER (WHERE t.state = 'processed'
                                          AND a.activity_type
                                              IN ('email', 'sms', 'whatsapp', 'push'))
                           ::int AS sent_count,
                       count(t.open_datetime) FILTER (WHERE t.state = 'processed')
                           ::int AS opened_count,
                       count(t.click_datetime) FILTER (WHERE t.state = 'processed')
                           ::int AS clicked_count,
                       count(t.reply_datetime) FILTER (WHERE t.state = 'processed')
                           ::int AS replied_count,
                       count(t.bounce_datetime) FILTER (WHERE t.state = 'processed')
                           ::int AS bounced_count
                  FROM mkt_trace t
                  JOIN mkt_activity a ON a.id = t.activity_id
                  JOIN mkt_campaign c ON c.id = t.campaign_id
                 WHERE t.is_test IS NOT TRUE
              GROUP BY t.campaign_id, t.activity_id, a.activity_type, t.state,
                       c.company_id, c.utm_campaign_id
            )
            """,
                table=SQL.identifier(self._table),
            )
        )
