from collections import defaultdict
from datetime import datetime, time, timedelta

from odoo import fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain

from .mkt_activity import EVENT_TRIGGERS, NEGATIVE_TRIGGERS

# days shown by the small graphs (workflow cards, dashboard cards)
GRAPH_DAYS = 15
# what a figure of a workflow card opens in the queue
FIGURE_DOMAINS = {
    "scheduled": [("state", "in", ("scheduled", "processing"))],
    "processed": [("state", "=", "processed")],
    "rejected": [("state", "=", "rejected")],
    "failed": [("state", "=", "failed")],
    "canceled": [("state", "=", "canceled")],
    "opened": [("state", "=", "processed"), ("open_datetime", "!=", False)],
    "clicked": [("state", "=", "processed"), ("click_datetime", "!=", False)],
    "replied": [("state", "=", "processed"), ("reply_datetime", "!=", False)],
    "bounced": [("state", "=", "processed"), ("bounce_datetime", "!=", False)],
}
# the recipient events each channel reports
CHANNEL_EVENTS = {
    "email": ("opened", "clicked", "replied", "bounced"),
    "sms": ("clicked",),
    "whatsapp": ("opened", "replied"),
}


def _day(value):
    """The date of a ``:day`` group (a datetime for a Datetime field)."""
    return value.date() if isinstance(value, datetime) else value


class MktCampaign(models.Model):
    """The workflow tree's figures and the dashboard's graph."""

    _inherit = "mkt.campaign"

    dashboard_graph = fields.Json(
        "Last 15 Days",
        compute="_compute_dashboard_graph",
        help="Steps processed and rejected per day over the last 15 days.",
    )

    def _compute_dashboard_graph(self):
        days = self._graph_days()
        counts = defaultdict(int)
        if self.ids:
            for campaign, state, day, count in self.env["mkt.trace"]._read_group(
                self._graph_domain(
                    [("campaign_id", "in", self.ids), ("is_test", "=", False)], days
                ),
                ["campaign_id", "state", "processed_date:day"],
                ["__count"],
            ):
                counts[campaign.id, state, _day(day)] = count
        for campaign in self:
            campaign.dashboard_graph = self._graph_series(
                lambda state, day, cid=campaign.id: counts[cid, state, day], days
            )

    # ------------------------------------------------------------------
    # Workflow tree
    # ------------------------------------------------------------------

    def get_workflow_figures(self):
        """The figures of every step of the campaign for the workflow tree,
        from two grouped queries over the queue (test participants excluded):

        ``{"activities": {activity_id: {"scheduled", "processed", "rejected",
        "failed", "canceled", "opened", "clicked", "replied", "bounced"
        (counts), "rates": {event: % of processed}, "graph": {"days",
        "processed", "rejected"}}}, "triggers": {activity type: [triggers of
        a child]}, "running": bool}``"""
        triggers = defaultdict(list)
        for trigger, (_event, types) in (EVENT_TRIGGERS | NEGATIVE_TRIGGERS).items():
            for activity_type in types:
                triggers[activity_type].append(trigger)
        if not self:
            # a campaign not saved yet: the cards only need the triggers
            return {"activities": {}, "triggers": dict(triggers), "running": False}
        self.ensure_one()
        self.check_access("read")
        Trace = self.env["mkt.trace"]
        base = [("campaign_id", "=", self.id), ("is_test", "=", False)]
        figures = defaultdict(lambda: dict.fromkeys(FIGURE_DOMAINS, 0))
        for activity, state, count, opened, clicked, replied, bounced in Trace._read_group(
            base,
            ["activity_id", "state"],
            [
                "__count",
                "open_datetime:count",
                "click_datetime:count",
                "reply_datetime:count",
                "bounce_datetime:count",
            ],
        ):
            values = figures[activity.id]
            values["scheduled" if state == "processing" else state] += count
            if state == "processed":
                values.update(opened=opened, clicked=clicked, replied=replied, bounced=bounced)
        days = self._graph_days()
        daily = defaultdict(int)
        for activity, state, day, count in Trace._read_group(
            self._graph_domain(base, days),
            ["activity_id", "state", "processed_date:day"],
            ["__count"],
        ):
            daily[activity.id, state, _day(day)] = count
        activities = {}
        for activity in self.activity_ids:
            values = figures[activity.id]
            processed = values["processed"]
            values["rates"] = {
                event: round(100.0 * values[event] / processed, 1) if processed else 0.0
                for event in CHANNEL_EVENTS.get(activity.activity_type, ())
            }
            values["graph"] = self._graph_series(
                lambda state, day, aid=activity.id: daily[aid, state, day], days
            )
            activities[activity.id] = values
        return {
            "activities": activities,
            "triggers": dict(triggers),
            "running": self.state == "running",
        }

    def action_view_workflow_traces(self, activity_id, figure):
        """The queue rows behind a figure of a workflow card."""
        self.ensure_one()
        if figure not in FIGURE_DOMAINS:
            raise UserError(self.env._("Unknown figure: %(figure)s", figure=figure))
        activity = self.activity_ids.filtered(lambda a: a.id == activity_id)
        if not activity:
            raise UserError(self.env._("This step is not part of the campaign."))
        action = self.env["ir.actions.act_window"]._for_xml_id("mkt_campaign.mkt_trace_action")
        action["domain"] = [
            ("activity_id", "=", activity.id),
            ("is_test", "=", False),
            *FIGURE_DOMAINS[figure],
        ]
        action["context"] = {"create": False}
        action["name"] = action["display_name"] = activity.name
        return action

    # ------------------------------------------------------------------
    # Graph helpers
    # ------------------------------------------------------------------

    def _graph_days(self):
        today = fields.Date.context_today(self)
        return [today - timedelta(days=offset) for offset in range(GRAPH_DAYS - 1, -1, -1)]

    def _graph_domain(self, domain, days):
        return Domain.AND(
            [
                domain,
                [
                    ("state", "in", ("processed", "rejected")),
                    ("processed_date", ">=", datetime.combine(days[0], time.min)),
                ],
            ]
        )

    def _graph_series(self, count, days):
        return {
            "days": [fields.Date.to_string(day) for day in days],
            "processed": [count("processed", day) for day in days],
            "rejected": [count("rejected", day) for day in days],
        }
