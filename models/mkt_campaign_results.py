from odoo import api, fields, models
from odoo.tools import SQL

MESSAGE_TYPES = ["email", "sms", "whatsapp", "push"]
# the delivery figures, in the order _compute_delivery unpacks them
DELIVERY_KEYS = (
    "pending",
    "email",
    "sms",
    "whatsapp",
    "push",
    "failed",
    "canceled",
    "rejected",
    "opened",
    "read",
    "clicked",
    "replied",
    "bounced",
)
# amounts without taxes, in the currency of the order's company (currency_rate:
# the rate of the order's currency to the company's at the order date)
RATE = SQL("COALESCE(NULLIF(o.currency_rate, 0), 1)")


def _rate(part, whole):
    return 100.0 * part / whole if whole else 0.0


class MktCampaign(models.Model):
    """Results of a campaign: delivery and engagement rates, budget and costs,
    objectives, the revenue it brought (CRM, sales, Point of Sale) and ROI.
    Everything is computed with a few grouped queries for all the campaigns
    displayed; test participants never count."""

    _inherit = "mkt.campaign"

    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id")
    budget = fields.Monetary(tracking=True, help="What the campaign may spend in total.")
    cost_ids = fields.One2many("mkt.campaign.cost", "campaign_id", "Costs", copy=False)
    cost_per_email = fields.Monetary(
        "Cost per E-mail", help="Counted for every e-mail the campaign sent."
    )
    cost_per_sms = fields.Monetary("Cost per SMS", help="Counted for every SMS the campaign sent.")
    cost_per_whatsapp = fields.Monetary(
        "Cost per WhatsApp", help="Counted for every WhatsApp message the campaign sent."
    )
    cost_per_push = fields.Monetary(
        "Cost per Push", help="Counted for every push notification the campaign sent."
    )
    attribution_days = fields.Integer(
        "Revenue Window (days)",
        default=30,
        help="Orders a participant's customer places within this many days after the "
        "campaign's first message to them count as the campaign's revenue.",
    )
    target_lead_count = fields.Integer("Leads Objective")
    target_conversion_rate = fields.Float("Conversion Objective (%)")
    target_revenue = fields.Monetary("Revenue Objective")
    target_roi = fields.Float("ROI Objective (%)")

    # delivery
    pending_count = fields.Integer("Pending", compute="_compute_delivery")
    sent_count = fields.Integer("Sent", compute="_compute_delivery")
    sent_email_count = fields.Integer("E-mails Sent", compute="_compute_delivery")
    sent_sms_count = fields.Integer("SMS Sent", compute="_compute_delivery")
    sent_whatsapp_count = fields.Integer("WhatsApp Sent", compute="_compute_delivery")
    sent_push_count = fields.Integer("Push Notifications Sent", compute="_compute_delivery")
    failed_count = fields.Integer("Failed", compute="_compute_delivery")
    canceled_count = fields.Integer("Canceled", compute="_compute_delivery")
    rejected_count = fields.Integer("Rejected", compute="_compute_delivery")
    opened_count = fields.Integer("E-mails Opened", compute="_compute_delivery")
    clicked_count = fields.Integer("Clicked", compute="_compute_delivery")
    replied_count = fields.Integer("Replied", compute="_compute_delivery")
    bounced_count = fields.Integer("Bounced", compute="_compute_delivery")
    open_rate = fields.Float(
        "Open Rate (%)",
        compute="_compute_delivery",
        aggregator="avg",
        help="E-mails opened / e-mails sent.",
    )
    click_rate = fields.Float(
        "Click Rate (%)",
        compute="_compute_delivery",
        aggregator="avg",
        help="E-mails and SMS whose link was clicked / e-mails and SMS sent.",
    )
    read_count = fields.Integer("WhatsApp Read", compute="_compute_delivery")
    read_rate = fields.Float(
        "Read Rate (%)", compute="_compute_delivery", help="WhatsApp messages read / sent."
    )
    reply_rate = fields.Float(
        "Reply Rate (%)",
        compute="_compute_delivery",
        help="E-mails and WhatsApp messages replied to / sent.",
    )
    bounce_rate = fields.Float("Bounce Rate (%)", compute="_compute_delivery")

    # costs
    registered_cost = fields.Monetary("Registered Costs", compute="_compute_costs")
    message_cost = fields.Monetary("Message Costs", compute="_compute_costs")
    total_cost = fields.Monetary(compute="_compute_costs")
    budget_remaining = fields.Monetary("Budget Left", compute="_compute_costs")
    budget_used_rate = fields.Float("Budget Used (%)", compute="_compute_costs")

    # outcome
    lead_count = fields.Integer("Leads", compute="_compute_revenue")
    won_count = fields.Integer("Won", compute="_compute_revenue")
    conversion_rate = fields.Float("Conversion (%)", compute="_compute_revenue")
    crm_revenue = fields.Monetary("Won Opportunities", compute="_compute_revenue")
    sale_revenue = fields.Monetary("Sales", compute="_compute_revenue")
    pos_revenue = fields.Monetary("Point of Sale", compute="_compute_revenue")
    revenue = fields.Monetary(compute="_compute_revenue")
    roi = fields.Float("ROI (%)", compute="_compute_revenue")

    @api.depends("company_id")
    def _compute_currency_id(self):
        for campaign in self:
            campaign.currency_id = (campaign.company_id or self.env.company).currency_id

    # ------------------------------------------------------------------
    # Delivery and engagement
    # ------------------------------------------------------------------

    def _compute_delivery(self):
        """From the statistics report (report/mkt_campaign_report.py): one
        grouped read for all the campaigns displayed."""
        stats = {}
        if self.ids:
            self.env.flush_all()
            # the figures of campaigns the caller reads, with their rights (the
            # report's rule is the campaign's company)
            groups = self.env["mkt.campaign.report"]._read_group(
                [("campaign_id", "in", self.ids)],
                ["campaign_id", "activity_type", "state"],
                [
                    "trace_count:sum",
                    "opened_count:sum",
                    "clicked_count:sum",
                    "replied_count:sum",
                    "bounced_count:sum",
                ],
            )
            for campaign, channel, state, count, opened, clicked, replied, bounced in groups:
                row = stats.setdefault(campaign.id, dict.fromkeys(DELIVERY_KEYS, 0))
                if state in ("scheduled", "processing"):
                    row["pending"] += count
                elif state in ("failed", "canceled", "rejected"):
                    row[state] += count
                elif state == "processed":
                    if channel in MESSAGE_TYPES:
                        row[channel] += count
                    if channel == "email":
                        row["opened"] += opened
                    elif channel == "whatsapp":
                        row["read"] += opened
                    row["clicked"] += clicked
                    row["replied"] += replied
                    row["bounced"] += bounced
        for campaign in self:
            row = stats.get(campaign.id) or dict.fromkeys(DELIVERY_KEYS, 0)
            (
                pending,
                emails,
                sms,
                whatsapp,
                push,
                failed,
                canceled,
                rejected,
                opened,
                read,
                clicked,
                replied,
                bounced,
            ) = (row[key] for key in DELIVERY_KEYS)
            campaign.update(
                {
                    "pending_count": pending,
                    "sent_email_count": emails,
                    "sent_sms_count": sms,
                    "sent_whatsapp_count": whatsapp,
                    "sent_push_count": push,
                    "sent_count": emails + sms + whatsapp + push,
                    "failed_count": failed,
                    "canceled_count": canceled,
                    "rejected_count": rejected,
                    "opened_count": opened,
                    "read_count": read,
                    "clicked_count": clicked,
                    "replied_count": replied,
                    "bounced_count": bounced,
                    "open_rate": _rate(opened, emails),
                    "click_rate": _rate(clicked, emails + sms),
                    "read_rate": _rate(read, whatsapp),
                    "reply_rate": _rate(replied, emails + whatsapp),
                    "bounce_rate": _rate(bounced, emails),
                }
            )

    def action_view_statistics(self):
        """The campaign's rows of the statistics report, by step and status."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mkt_campaign.mkt_campaign_report_action"
        )
        action["display_name"] = self.env._("Statistics of %(campaign)s", campaign=self.name)
        action["domain"] = [("campaign_id", "=", self.id)]
        action["context"] = {"pivot_row_groupby": ["activity_id"]}
        return action

    # ------------------------------------------------------------------
    # Budget and costs
    # ------------------------------------------------------------------

    @api.depends(
        "budget",
        "cost_ids.amount",
        "cost_per_email",
        "cost_per_sms",
        "cost_per_whatsapp",
        "cost_per_push",
    )
    def _compute_costs(self):
        for campaign in self:
            registered = sum(campaign.cost_ids.mapped("amount"))
            messages = (
                campaign.sent_email_count * campaign.cost_per_email
                + campaign.sent_sms_count * campaign.cost_per_sms
                + campaign.sent_whatsapp_count * campaign.cost_per_whatsapp
                + campaign.sent_push_count * campaign.cost_per_push
            )
            total = registered + messages
            campaign.registered_cost = registered
            campaign.message_cost = messages
            campaign.total_cost = total
            campaign.budget_remaining = campaign.budget - total
            campaign.budget_used_rate = _rate(total, campaign.budget)

    # ------------------------------------------------------------------
    # Revenue and ROI
    # ------------------------------------------------------------------

    def _mkt_reached_sql(self):
        """(campaign_id, participant_id, res_id, partner_id, first_date, until):
        participants who received at least one message of the campaign, with
        the customer of their record and the window of its revenue. One
        SELECT per target model, joined by UNION ALL."""
        parts = []
        for model_name, campaigns in self.grouped("model_name").items():
            Model = self.env.get(model_name)
            if Model is None:
                continue
            partner_sql = Model._mkt_partner_sql("r")
            if model_name == "res.partner":
                partner = SQL("p.res_id")
            elif partner_sql is not None:
                partner = SQL(
                    "(SELECT %s FROM %s r WHERE r.id = p.res_id)",
                    partner_sql,
                    SQL.identifier(Model._table),
                )
            else:
                partner = SQL("NULL::int")
            parts.append(
                SQL(
                    """
                SELECT m.campaign_id, m.participant_id, p.res_id, %(partner)s AS partner_id,
                       m.first_date,
                       m.first_date + interval '1 day' * c.attribution_days AS until,
                       c.company_id
                  FROM (SELECT t.campaign_id, t.participant_id,
                               min(t.processed_date) AS first_date
                          FROM mkt_trace t
                          JOIN mkt_activity a ON a.id = t.activity_id
                         WHERE t.campaign_id = ANY(%(ids)s) AND t.state = 'processed'
                           AND t.is_test IS NOT TRUE AND a.activity_type = ANY(%(types)s)
                      GROUP BY t.campaign_id, t.participant_id) m
                  JOIN mkt_participant p ON p.id = m.participant_id
                  JOIN mkt_campaign c ON c.id = m.campaign_id
                """,
                    partner=partner,
                    ids=campaigns.ids,
                    types=MESSAGE_TYPES,
                )
            )
        return SQL(" UNION ALL ").join(parts) if parts else None

    def _compute_revenue(self):
        leads, crm, sales, pos = {}, {}, {}, {}
        reached = self._mkt_reached_sql() if self.ids else None
        if reached is not None:
            self.env.flush_all()
            cr = self.env.cr
            lead_campaigns = self.filtered(lambda c: c.model_name == "crm.lead")
            # leads of the campaign: attributed to its UTM campaign (tracked links,
            # web forms, set by hand), or enrolled leads it messaged
            cr.execute(
                SQL(
                    """
                WITH reached AS MATERIALIZED (%(reached)s),
                attributed AS (
                    SELECT c.id AS campaign_id, l.id AS lead_id, NULL::timestamp AS first_date
                      FROM mkt_campaign c
                      JOIN crm_lead l ON l.campaign_id = c.utm_campaign_id
                     WHERE c.id = ANY(%(ids)s)
                     UNION
                    SELECT r.campaign_id, r.res_id, r.first_date
                      FROM reached r
                     WHERE r.campaign_id = ANY(%(lead_campaigns)s)
                )
                SELECT x.campaign_id, count(DISTINCT x.lead_id),
                       count(DISTINCT x.lead_id) FILTER (WHERE x.won),
                       COALESCE(sum(x.revenue) FILTER (WHERE x.won), 0),
                       array_agg(DISTINCT x.lead_id) FILTER (WHERE x.won)
                  FROM (SELECT DISTINCT ON (a.campaign_id, l.id) a.campaign_id, l.id AS lead_id,
                               l.expected_revenue AS revenue,
                               l.won_status = 'won'
                                   AND (a.first_date IS NULL OR l.date_closed >= a.first_date)
                                   AS won
                          FROM attributed a
                          JOIN crm_lead l ON l.id = a.lead_id
                      ORDER BY a.campaign_id, l.id, a.first_date NULLS FIRST) x
              GROUP BY x.campaign_id
                """,
                    reached=reached,
                    ids=self.ids,
                    lead_campaigns=lead_campaigns.ids,
                )
            )
            won_leads = {}
            for campaign_id, count, won, revenue, won_ids in cr.fetchall():
                leads[campaign_id] = (count, won)
                crm[campaign_id] = revenue
                won_leads[campaign_id] = won_ids or []
            # sales: confirmed orders attributed to the UTM campaign, or placed by
            # a messaged customer within the window; an order of a won opportunity
            # counted above is not counted twice
            has_opportunity = "opportunity_id" in self.env["sale.order"]._fields
            cr.execute(
                SQL(
                    """
                WITH reached AS MATERIALIZED (%(reached)s),
                won AS (SELECT * FROM unnest(%(won_campaigns)s::int[], %(won_leads)s::int[])
                                   AS w(campaign_id, lead_id))
                SELECT x.campaign_id, sum(x.amount)
                  FROM (SELECT c.id AS campaign_id, o.id,
                               o.amount_untaxed / %(rate)s AS amount
                          FROM mkt_campaign c
                          JOIN sale_order o ON o.campaign_id = c.utm_campaign_id
                         WHERE c.id = ANY(%(ids)s) AND o.state = 'sale'
                         UNION
                        SELECT r.campaign_id, o.id, o.amount_untaxed / %(rate)s
                          FROM reached r
                          JOIN sale_order o ON o.partner_id = r.partner_id
                               AND o.date_order >= r.first_date AND o.date_order < r.until
                         WHERE o.state = 'sale'
                           AND (r.company_id IS NULL OR o.company_id = r.company_id)) x
                 WHERE NOT EXISTS (
                        SELECT 1 FROM won w JOIN sale_order so ON so.id = x.id
                         WHERE w.campaign_id = x.campaign_id AND %(opportunity)s)
              GROUP BY x.campaign_id
                """,
                    reached=reached,
                    ids=self.ids,
                    rate=RATE,
                    won_campaigns=[c for c, lead_ids in won_leads.items() for _lead in lead_ids],
                    won_leads=[lead for lead_ids in won_leads.values() for lead in lead_ids],
                    opportunity=SQL("so.opportunity_id = w.lead_id")
                    if has_opportunity
                    else SQL("false"),
                )
            )
            sales = dict(cr.fetchall())
            # Point of Sale: paid orders of messaged customers within the window
            # (refunds count negatively)
            cr.execute(
                SQL(
                    """
                WITH reached AS MATERIALIZED (%(reached)s)
                SELECT x.campaign_id, sum(x.amount)
                  FROM (SELECT DISTINCT r.campaign_id, o.id,
                               (o.amount_total - o.amount_tax) / %(rate)s AS amount
                          FROM reached r
                          JOIN pos_order o ON o.partner_id = r.partner_id
                               AND o.date_order >= r.first_date AND o.date_order < r.until
                         WHERE o.state IN ('paid', 'done')
                           AND (r.company_id IS NULL OR o.company_id = r.company_id)) x
              GROUP BY x.campaign_id
                """,
                    reached=reached,
                    rate=RATE,
                )
            )
            pos = dict(cr.fetchall())
        for campaign in self:
            count, won = leads.get(campaign.id, (0, 0))
            revenue = (
                crm.get(campaign.id, 0.0) + sales.get(campaign.id, 0.0) + pos.get(campaign.id, 0.0)
            )
            campaign.lead_count = count
            campaign.won_count = won
            campaign.conversion_rate = _rate(won, count)
            campaign.crm_revenue = crm.get(campaign.id, 0.0)
            campaign.sale_revenue = sales.get(campaign.id, 0.0)
            campaign.pos_revenue = pos.get(campaign.id, 0.0)
            campaign.revenue = revenue
            cost = campaign.total_cost
            campaign.roi = _rate(revenue - cost, cost)
