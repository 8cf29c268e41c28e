from odoo import fields, models

# what a provider said about a message after it left (mkt_trace_feedback.py)
FEEDBACK_KINDS = [
    ("delivered", "Delivered"),
    ("bounced_hard", "Bounced (hard)"),
    ("bounced_soft", "Bounced (soft)"),
    ("complained", "Complained (spam)"),
    ("blocked", "Blocked"),
    ("unsubscribed", "Unsubscribed"),
]
ATTEMPT_OUTCOMES = [
    ("processed", "Sent"),
    ("rejected", "Rejected"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
    ("retry", "Failed, Retried"),
    *FEEDBACK_KINDS,
]


class MktTraceAttempt(models.Model):
    """History of a queue row: one line per attempt of the step (its outcome
    and the answer of the channel or provider) and per feedback the provider
    sent about the message afterwards. Written in bulk by the queue
    (mkt_trace_feedback.py), never edited."""

    _name = "mkt.trace.attempt"
    _description = "Marketing Campaign Step Attempt"
    _order = "attempt_date desc, id desc"
    _rec_name = "outcome"
    _log_access = False

    trace_id = fields.Many2one(
        "mkt.trace", "Queue Row", required=True, ondelete="cascade", index=True, readonly=True
    )
    campaign_id = fields.Many2one(related="trace_id.campaign_id")
    attempt = fields.Integer(readonly=True, help="Number of the attempt of the step.")
    attempt_date = fields.Datetime("Time", required=True, readonly=True)
    outcome = fields.Selection(ATTEMPT_OUTCOMES, required=True, readonly=True)
    answer = fields.Text(readonly=True, help="What the channel or the provider answered.")
