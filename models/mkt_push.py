from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.fcm_api import FcmApi, PushError


class MktPushToken(models.Model):
    """A device (phone app, browser) of a contact that accepts push
    notifications: the Firebase Cloud Messaging registration token the app
    received, registered through /mkt_campaign/push/register."""

    _name = "mkt.push.token"
    _description = "Push Notification Device"
    _order = "id desc"

    partner_id = fields.Many2one(
        "res.partner", "Contact", required=True, ondelete="cascade", index=True
    )
    token = fields.Char("Device Token", required=True)
    platform = fields.Selection(
        [("android", "Android"), ("ios", "iOS"), ("web", "Web")], default="android"
    )
    active = fields.Boolean(default=True)
    last_error = fields.Char(readonly=True)

    _token_unique = models.Constraint("UNIQUE(token)", "A device token is registered once.")

    # ------------------------------------------------------------------
    # Channel adapter (push steps of campaigns)
    # ------------------------------------------------------------------

    @api.model
    def _mkt_execute(self, traces):
        """Channel adapter of push steps (contract: mkt.trace._execute_activity).

        Send the step's notification to every active device of each
        participant's contact through Firebase Cloud Messaging. A step is
        processed when one device got it; devices Firebase no longer knows are
        deactivated; throttling and outages are retried."""
        activity = traces.activity_id
        try:
            client = FcmApi(self.env)
        except UserError as error:
            return dict.fromkeys(traces, ("failed", str(error)))
        campaign = activity.campaign_id
        Model = self.env[campaign.model_name].with_context(active_test=False)
        records = Model.browse(traces.mapped("res_id"))
        partner_by_res = {
            res_id: partner.id for res_id, partner in records._mkt_get_partners().items()
        }
        devices = defaultdict(list)
        for token in self.search([("partner_id", "in", [p for p in partner_by_res.values() if p])]):
            devices[token.partner_id.id].append(token)
        titles = activity._render_push(activity.push_title, records.ids)
        bodies = activity._render_push(activity.push_body, records.ids)
        outcome, dead = {}, []
        authenticated = False
        for trace in traces:
            tokens = devices.get(partner_by_res.get(trace.res_id))
            if not tokens:
                outcome[trace] = (
                    "rejected",
                    self.env._("No push device registered for this contact."),
                )
                continue
            if not authenticated:
                traces._mark_sending()
                try:
                    client.authenticate()
                except PushError as error:
                    state = "retry" if error.transient else "failed"
                    outcome.update({t: (state, str(error)) for t in traces if t not in outcome})
                    break
                authenticated = True
            sent, errors = 0, []
            for token in tokens:
                try:
                    client.send(
                        token.token,
                        titles[trace.res_id],
                        bodies[trace.res_id],
                        {"campaign": campaign.id, "step": activity.id},
                    )
                    sent += 1
                except PushError as error:
                    errors.append(error)
                    if error.dead_token:
                        dead.append((token, str(error)))
            if sent:
                continue
            if all(error.transient for error in errors):
                outcome[trace] = ("retry", str(errors[0]))
            elif all(error.dead_token for error in errors):
                outcome[trace] = (
                    "rejected",
                    self.env._(
                        "No device of this contact accepts notifications anymore: %(error)s",
                        error=str(errors[0]),
                    ),
                )
            else:
                outcome[trace] = ("failed", str(errors[0]))
        client.close()
        for token, message in dead:
            token.write({"active": False, "last_error": message})
        return outcome
