from collections import defaultdict

from odoo import models


class SmsTracker(models.Model):
    _inherit = "sms.tracker"

    def _update_sms_traces(self, trace_status, failure_type=False, failure_reason=False):
        """A delivery report (``/sms/status``) saying an SMS the provider had
        accepted was not delivered fails its campaign step: it is no longer
        counted as sent and its follow-ups are canceled. A report arriving
        after the SMS was reported delivered, or twice, changes nothing."""
        delivered = self.mailing_trace_id.filtered(lambda t: t.trace_status == "sent")
        traces = super()._update_sms_traces(
            trace_status, failure_type=failure_type, failure_reason=failure_reason
        )
        if trace_status == "error":
            failed = (traces - delivered).filtered("mkt_trace_id")
            if failed:
                labels = dict(failed._fields["failure_type"]._description_selection(self.env))
                by_reason = defaultdict(lambda: self.env["mkt.trace"])
                for mtrace in failed:
                    by_reason[
                        self.env._(
                            "The SMS was not delivered: %(error)s",
                            error=mtrace.failure_reason
                            or labels.get(mtrace.failure_type)
                            or mtrace.failure_type
                            or "",
                        )
                    ] |= mtrace.mkt_trace_id
                # steps still being sent ('processing') get their outcome from
                # the sending itself (mailing_mailing_sms.py): only processed
                # steps are failed here
                for reason, steps in by_reason.items():
                    # the queue's fields, for the (anonymous) delivery report
                    steps.sudo()._fail_after_sending(reason)
        return traces
