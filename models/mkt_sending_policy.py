from collections import defaultdict
from datetime import datetime, timedelta

import pytz

from odoo import api, fields, models
from odoo.tools import SQL

CAP_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
MESSAGE_TYPES = ("email", "sms", "whatsapp", "push")


class MktSendingPolicy(models.AbstractModel):
    """Rules every marketing message obeys, whatever the campaign: consent,
    frequency caps across campaigns, and the sending window. They are decided
    for a whole batch at once, with a constant number of queries."""

    _name = "mkt.sending.policy"
    _description = "Marketing Campaign Sending Rules"

    @api.model
    def _get_settings(self):
        params = self.env["ir.config_parameter"]

        def integer(key):
            try:
                return max(int(params.get_param(key) or 0), 0)
            except ValueError:
                return 0

        def number(key, default):
            try:
                return float(params.get_param(key) or default)
            except ValueError:
                return default

        weekdays = params.get_param("mkt_campaign.quiet_weekdays", "0,1,2,3,4,5,6")
        return {
            "caps": {
                None: (
                    integer("mkt_campaign.cap_all"),
                    params.get_param("mkt_campaign.cap_all_period") or "week",
                ),
                "email": (
                    integer("mkt_campaign.cap_email"),
                    params.get_param("mkt_campaign.cap_email_period") or "week",
                ),
                "sms": (
                    integer("mkt_campaign.cap_sms"),
                    params.get_param("mkt_campaign.cap_sms_period") or "week",
                ),
            },
            "quiet_hours": bool(params.get_param("mkt_campaign.quiet_hours")),
            "hour_from": number("mkt_campaign.quiet_hour_from", 9.0),
            "hour_to": number("mkt_campaign.quiet_hour_to", 20.0),
            "weekdays": {int(d) for d in weekdays.split(",") if d.strip().isdigit()},
        }

    @api.model
    def _apply(self, traces, activity):
        """Return the traces that may be sent now. The others are rejected
        (no consent) or postponed (cap reached, outside the sending window),
        with the reason on the queue row. Run by the queue, as superuser."""
        if activity.activity_type not in MESSAGE_TYPES or not traces:
            return traces
        settings = self._get_settings()
        traces = self._check_consent(traces, activity)
        if settings["quiet_hours"]:
            traces = self._check_window(traces, activity, settings)
        return self._check_caps(traces, activity, settings)

    # ------------------------------------------------------------------
    # Consent
    # ------------------------------------------------------------------

    @api.model
    def _check_consent(self, traces, activity):
        campaign = activity.campaign_id
        if not traces or not campaign.require_optin:
            return traces
        Model = self.env[campaign.model_name]
        records = Model.browse(traces.mapped("res_id"))
        confirmed = set(records.filtered(lambda r: r._mkt_has_confirmed_optin()).ids)
        refused = traces.filtered(lambda t: t.res_id not in confirmed)
        refused._set_state(
            "rejected",
            self.env._(
                "No confirmed opt-in: this campaign only writes to contacts "
                "who confirmed their subscription (double opt-in)."
            ),
        )
        return traces - refused

    # ------------------------------------------------------------------
    # Sending window (quiet hours)
    # ------------------------------------------------------------------

    @api.model
    def _check_window(self, traces, activity, settings):
        if not traces:
            return traces
        campaign = activity.campaign_id
        default_tz = (
            campaign.company_id.partner_id.tz
            or self.env.company.partner_id.tz
            or self.env.user.tz
            or "UTC"
        )
        Model = self.env[campaign.model_name]
        records = Model.browse(traces.mapped("res_id"))
        tz_by_res_id = {record.id: record._mkt_get_tz() or default_tz for record in records}
        now = fields.Datetime.now()
        waiting = defaultdict(lambda: self.env["mkt.trace"])
        for trace in traces:
            tz_name = tz_by_res_id.get(trace.res_id) or default_tz
            next_open = self._next_window_opening(now, tz_name, settings)
            if next_open:
                waiting[(next_open, tz_name)] |= trace
        for (date, tz_name), group in waiting.items():
            group._postpone(
                date,
                self.env._(
                    "Waiting for the sending window (%(start)s–%(end)s, %(tz)s).",
                    start=self._format_hour(settings["hour_from"]),
                    end=self._format_hour(settings["hour_to"]),
                    tz=tz_name,
                ),
            )
        postponed = self.env["mkt.trace"].union(*waiting.values())
        return traces - postponed

    @api.model
    def _next_window_opening(self, now_utc, tz_name, settings):
        """None when ``now_utc`` is inside the window in ``tz_name``, else the
        UTC datetime (naive) of the next opening."""
        try:
            tz = pytz.timezone(tz_name)
        except pytz.UnknownTimeZoneError:
            tz = pytz.utc
        local = pytz.utc.localize(now_utc).astimezone(tz)
        hour = local.hour + local.minute / 60 + local.second / 3600
        start, end, weekdays = settings["hour_from"], settings["hour_to"], settings["weekdays"]
        if not weekdays:
            weekdays = set(range(7))
        if local.weekday() in weekdays and start <= hour < end:
            return None
        for days in range(8):
            day = (local + timedelta(days=days)).date()
            if day.weekday() not in weekdays:
                continue
            opening = tz.localize(
                datetime.combine(day, datetime.min.time()) + timedelta(hours=start)
            )
            if opening > local:
                return opening.astimezone(pytz.utc).replace(tzinfo=None)
        return None

    @staticmethod
    def _format_hour(value):
        return "%02d:%02d" % (int(value), round((value % 1) * 60))

    # ------------------------------------------------------------------
    # Frequency caps
    # ------------------------------------------------------------------

    @api.model
    def _check_caps(self, traces, activity, settings):
        if not traces:
            return traces
        now = fields.Datetime.now()
        channel = activity.activity_type
        caps = [
            (limit, period, scope)
            for scope, (limit, period) in settings["caps"].items()
            if limit and (scope is None or scope == channel)
        ]
        if not caps:
            return traces
        self.env.flush_all()
        # one person: the address (the one inside "Name <address>"), without
        # case; an empty address or phone is none
        key_sql = SQL(
            "COALESCE(lower(COALESCE(substring(p.email FROM '<([^<>]+)>'),"
            " NULLIF(trim(p.email), ''))), NULLIF(trim(p.phone), ''), p.id::text)"
        )
        key_by_trace = {}
        self.env.cr.execute(
            SQL(
                "SELECT t.id, %s FROM mkt_trace t"
                " JOIN mkt_participant p ON p.id = t.participant_id"
                " WHERE t.id = ANY(%s)",
                key_sql,
                traces.ids,
            )
        )
        key_by_trace = dict(self.env.cr.fetchall())
        keys = list(set(key_by_trace.values()))
        postpone_until = {}
        for limit, period, scope in caps:
            window = CAP_PERIODS.get(period, CAP_PERIODS["week"])
            types = [scope] if scope else list(MESSAGE_TYPES)
            # one query: the messages each contact received in the window, newest first
            self.env.cr.execute(
                SQL(
                    """
                SELECT %(key)s AS key,
                       (array_agg(t.processed_date
                                  ORDER BY t.processed_date DESC))[1:%(limit)s]
                  FROM mkt_trace t
                  JOIN mkt_participant p ON p.id = t.participant_id
                  JOIN mkt_activity a ON a.id = t.activity_id
                 WHERE t.state = 'processed' AND NOT t.is_test
                   AND a.activity_type = ANY(%(types)s)
                   AND t.processed_date > %(since)s
                   AND %(key)s = ANY(%(keys)s)
              GROUP BY 1
                """,
                    key=key_sql,
                    limit=limit,
                    types=types,
                    since=now - window,
                    keys=keys,
                )
            )
            sent = {key: dates for key, dates in self.env.cr.fetchall()}
            used = defaultdict(int)
            for trace in traces.sorted(lambda t: (t.schedule_date or now, t.id)):
                key = key_by_trace[trace.id]
                dates = sent.get(key, [])
                if len(dates) + used[key] < limit:
                    used[key] += 1
                    continue
                # the cap allows a new message when the limit-th newest
                # leaves the window
                oldest_counted = dates[limit - 1] if len(dates) >= limit else now
                free_at = oldest_counted + window
                label = self.env._(
                    "%(scope)s: at most %(limit)s per %(period)s",
                    limit=limit,
                    period={
                        "day": self.env._("day"),
                        "month": self.env._("month"),
                    }.get(period, self.env._("week")),
                    scope=self.env._("all channels")
                    if not scope
                    else (self.env._("e-mail") if scope == "email" else "SMS"),
                )
                previous = postpone_until.get(trace)
                if not previous or previous[0] < free_at:
                    postpone_until[trace] = (free_at, label)
        groups = defaultdict(lambda: self.env["mkt.trace"])
        for trace, (date, label) in postpone_until.items():
            groups[(date, label)] |= trace
        for (date, label), group in groups.items():
            group._postpone(
                date, self.env._("Postponed: frequency cap reached (%(cap)s).", cap=label)
            )
        return traces.filtered(lambda t: t not in postpone_until)
