from odoo import fields, models, tools


class MktEvent(models.Model):
    """Event log of the campaigns, one row per thing that happened to a
    message: sent, failed, opened, read, clicked (one row per click, with the
    link and the visitor's country), replied, bounced. A database view over the
    queue and the link tracker, for reports and BI exports."""

    _name = "mkt.event"
    _description = "Marketing Campaign Event"
    _auto = False
    _order = "event_date desc, id desc"
    _rec_name = "event_type"

    event_date = fields.Datetime("Date", readonly=True)
    event_type = fields.Selection(
        [
            ("sent", "Sent"),
            ("failed", "Failed"),
            ("opened", "Opened"),
            ("read", "Read"),
            ("clicked", "Clicked"),
            ("replied", "Replied"),
            ("bounced", "Bounced"),
            # provider feedback (mkt_trace_feedback.py)
            ("delivered", "Delivered"),
            ("bounced_soft", "Bounced (soft)"),
            ("complained", "Complained (spam)"),
            ("blocked", "Blocked"),
            ("unsubscribed", "Unsubscribed"),
        ],
        "Event",
        readonly=True,
    )
    campaign_id = fields.Many2one("mkt.campaign", readonly=True)
    activity_id = fields.Many2one("mkt.activity", "Step", readonly=True)
    channel = fields.Selection(
        [
            ("email", "E-mail"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("push", "Push Notification"),
        ],
        readonly=True,
    )
    trace_id = fields.Many2one("mkt.trace", "Queue Row", readonly=True)
    participant_id = fields.Many2one("mkt.participant", readonly=True)
    record_name = fields.Char("Contact", readonly=True)
    email = fields.Char(readonly=True)
    phone = fields.Char(readonly=True)
    url = fields.Char("Link", readonly=True)
    country_id = fields.Many2one("res.country", readonly=True)
    detail = fields.Char(readonly=True)
    payload = fields.Text(readonly=True, help="The participant's payload (JSON).")

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(f"""
            CREATE OR REPLACE VIEW {self._table} AS (
                WITH steps AS (
                    SELECT t.id AS trace_id, t.campaign_id, t.activity_id,
                           a.activity_type AS channel,
                           t.participant_id, p.record_name, p.email, p.phone, t.state,
                           t.processed_date, t.open_datetime, t.reply_datetime,
                           t.bounce_datetime, t.error_message, p.payload::text AS payload,
                           CASE WHEN t.feedback = 'bounced_hard' THEN t.feedback_answer END
                               AS bounce_answer
                      FROM mkt_trace t
                      JOIN mkt_activity a ON a.id = t.activity_id
                      JOIN mkt_participant p ON p.id = t.participant_id
                     WHERE a.activity_type IN ('email', 'sms', 'whatsapp', 'push')
                       AND t.is_test IS NOT TRUE
                ), events AS (
                    SELECT s.*, 'sent' AS event_type, s.processed_date AS event_date,
                           NULL::varchar AS url, NULL::int AS country_id, NULL::varchar AS detail,
                           0 AS kind, 0 AS sub_id
                      FROM steps s WHERE s.state = 'processed'
                     UNION ALL
                    SELECT s.*, 'failed', s.processed_date, NULL, NULL, s.error_message, 1, 0
                      FROM steps s WHERE s.state = 'failed'
                     UNION ALL
                    SELECT s.*, CASE WHEN s.channel = 'whatsapp' THEN 'read' ELSE 'opened' END,
                           s.open_datetime, NULL, NULL, NULL, 2, 0
                      FROM steps s WHERE s.open_datetime IS NOT NULL
                     UNION ALL
                    SELECT s.*, 'replied', s.reply_datetime, NULL, NULL, NULL, 3, 0
                      FROM steps s WHERE s.reply_datetime IS NOT NULL
                     UNION ALL
                    SELECT s.*, 'bounced', s.bounce_datetime, NULL, NULL, s.bounce_answer, 4, 0
                      FROM steps s WHERE s.bounce_datetime IS NOT NULL
                     UNION ALL
                    SELECT s.*, at.outcome, at.attempt_date, NULL, NULL, at.answer, 6, at.id
                      FROM steps s
                      JOIN mkt_trace_attempt at ON at.trace_id = s.trace_id
                     WHERE at.outcome IN ('delivered', 'bounced_soft', 'complained',
                                          'blocked', 'unsubscribed')
                     UNION ALL
                    SELECT s.*, 'clicked', c.create_date, l.url, c.country_id, NULL, 5, c.id
                      FROM steps s
                      JOIN mailing_trace mt ON mt.mkt_trace_id = s.trace_id
                      JOIN link_tracker_click c ON c.mailing_trace_id = mt.id
                      JOIN link_tracker l ON l.id = c.link_id
                )
                -- stable ids: queue row x event kind, clicks above 2^40 by click id,
                -- provider feedback above 2^41 by history line id
                SELECT CASE WHEN e.kind = 5 THEN 1099511627776 + e.sub_id
                            WHEN e.kind = 6 THEN 2199023255552 + e.sub_id
                            ELSE e.trace_id::bigint * 8 + e.kind END AS id,
                       e.event_date, e.event_type, e.campaign_id, e.activity_id, e.channel,
                       e.trace_id, e.participant_id, e.record_name, e.email, e.phone,
                       e.url, e.country_id, e.detail, e.payload
                  FROM events e
            )
        """)
