from odoo import fields, models


class MailingTrace(models.Model):
    _inherit = "mailing.trace"

    mkt_trace_id = fields.Many2one(
        "mkt.trace", "Campaign Step", index="btree_not_null", ondelete="set null"
    )

    def write(self, vals):
        """Tracking (open, click, reply, bounce) reaches campaign steps here,
        whichever path Email/SMS Marketing took to record it."""
        # a reply or a click implies the message was opened: "open" comes first
        status = vals.get("trace_status")
        clicked = bool(vals.get("links_click_datetime"))
        events = [
            event
            for event, happened in (
                ("open", status in ("open", "reply") or clicked),
                ("reply", status == "reply"),
                ("click", clicked),
                ("bounce", status == "bounce"),
            )
            if happened
        ]
        res = super().write(vals)
        if status == "bounce":
            # the provider's answer kept on the step (mkt_trace_feedback.py)
            linked = self.filtered("mkt_trace_id")
            now = fields.Datetime.now()
            # the queue's fields, written by the engine for whoever records the
            # bounce (often the anonymous tracking/bounce path): no value of theirs
            self.env["mkt.trace"].sudo()._record_feedback(
                [
                    (mtrace.mkt_trace_id.id, "bounced_hard", mtrace.failure_reason or False, now)
                    for mtrace in linked
                ]
            )
        if events:
            linked = self.filtered("mkt_trace_id")
            for event in events:
                for trace_type, traces in linked.grouped("trace_type").items():
                    channel = "sms" if trace_type == "sms" else "email"
                    # the engine reacts to the event on the linked steps (the
                    # queue's fields; a campaign user only reads them)
                    traces.mkt_trace_id.sudo()._process_event(event, channel)
        return res
