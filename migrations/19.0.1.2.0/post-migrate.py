"""The server actions that New from Template creates are now registered under
the module's name (ir.model.data ``mkt_campaign.campaign_template_action_<id>``),
so that uninstalling the module removes them (see uninstall_hook). Register the
ones created by earlier versions: actions of campaign steps, without an XML id,
whose code is exactly one the templates write."""

import re

TEMPLATE_CODES = [
    re.compile(r"records\.write\(\{'category_id': \[\(4, \d+\)\]\}\)"),
    re.compile(
        re.escape(
            "for record in records:\n"
            "    env['mail.blacklist'].sudo()._add(record.email, "
            "message='Bounced on the welcome e-mail')"
        )
    ),
    re.compile(
        re.escape(
            "for lead in records:\n"
            "    lead.activity_schedule('mail.mail_activity_data_call', "
            "user_id=lead.user_id.id or env.user.id, summary='Call about the new opportunity')"
        )
    ),
    re.compile(re.escape("records.write({'priority': '3'})")),
]


def migrate(cr, version):
    cr.execute("""
        SELECT a.id, a.code
          FROM ir_act_server a
         WHERE a.id IN (SELECT server_action_id FROM mkt_activity)
           AND NOT EXISTS (SELECT 1 FROM ir_model_data d
                            WHERE d.model = 'ir.actions.server' AND d.res_id = a.id)
    """)
    ids = [
        action_id
        for action_id, code in cr.fetchall()
        if any(pattern.fullmatch(code or "") for pattern in TEMPLATE_CODES)
    ]
    for action_id in ids:
        cr.execute(
            """
            INSERT INTO ir_model_data (module, name, model, res_id, noupdate,
                                       create_uid, write_uid, create_date, write_date)
            VALUES ('mkt_campaign', %s, 'ir.actions.server', %s, true,
                    1, 1, now() at time zone 'utc', now() at time zone 'utc')
            ON CONFLICT DO NOTHING
        """,
            [f"campaign_template_action_{action_id}", action_id],
        )
