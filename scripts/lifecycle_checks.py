# Checks of scripts/lifecycle, run inside `odoo shell` (``env`` is given):
#
#     exec(open(this_file).read()); PHASE(env, "state.json")
#
# Each check prints one line "PASS: ..." or "FAIL: ..."; scripts/lifecycle
# counts them.  The state file carries ids from one phase to the next.
# Not part of the addon's Python package (Odoo imports only __init__.py).
import json
from datetime import timedelta

from odoo import fields

CRON_QUEUE = "mkt_campaign.ir_cron_execute_activities"


def _check(ok, label, detail=""):
    print(("PASS: " if ok else "FAIL: ") + label + ("" if ok or not detail else f" ({detail})"))
    return ok


def _load(path):
    with open(path) as f:
        return json.load(f)


def _save(path, data):
    with open(path, "w") as f:
        json.dump(data, f)


def _queue_pass(env):
    """One run of the queue, as the scheduler (or 'Run Manually') does it."""
    env.ref(CRON_QUEUE).method_direct_trigger()
    env.invalidate_all()


def _launch_demo(env):
    campaign = env.ref("mkt_campaign.mkt_campaign_welcome_demo")
    if campaign.state != "running":
        campaign.action_start()
    env.cr.commit()
    _queue_pass(env)
    env.cr.commit()
    return campaign


def prepare(env, state_path):
    """Fresh database with demo data: launch the demo campaign, approve the
    demo WhatsApp template and add it to the Actions menu (Allow Multi),
    create a campaign from each template (their server actions), run one
    queue pass.  Remember what the addon created outside its own tables."""
    campaign = _launch_demo(env)
    traces = env["mkt.trace"].search([("campaign_id", "=", campaign.id)])
    _check(campaign.state == "running", "demo campaign launched", campaign.state)
    _check(bool(campaign.participant_ids), "demo campaign has participants")
    _check(
        bool(traces.filtered(lambda t: t.state == "processed")),
        "queue pass processed steps",
        str(traces.mapped("state")),
    )
    _save(state_path, _runtime_records(env))


def _runtime_records(env):
    """What an administrator creates that lands outside the addon's tables:
    the demo WhatsApp template approved and added to the Actions menu (Allow
    Multi), a campaign from each template (their server actions), a setting."""
    template = env.ref("mkt_campaign.mkt_whatsapp_template_spring_demo")
    # WhatsApp's approval, written as the engine does (superuser)
    template.sudo().write({"status": "approved"})
    template.action_allow_multi()
    _check(bool(template.multi_action_id), "WhatsApp Allow Multi created its list action")
    wizard_actions = env["ir.actions.server"]
    for key, _label in env["mkt.campaign.template"]._fields["template"].selection:
        before = env["ir.actions.server"].search([])
        env["mkt.campaign.template"].create({"template": key}).action_create()
        wizard_actions |= env["ir.actions.server"].search([]) - before
    _check(bool(wizard_actions), "campaign templates created their server actions")
    env["ir.config_parameter"].sudo().set_param("mkt_campaign.cap_day", "3")
    env.cr.commit()
    crons = (
        env["ir.cron"]
        .with_context(active_test=False)
        .search([("ir_actions_server_id.model_id.model", "=like", "mkt.%")])
    )
    _check(bool(crons), "the addon's crons exist")
    return {
        "server_action_ids": (template.multi_action_id | wizard_actions).ids,
        "cron_ids": crons.ids,
    }


def after_uninstall(env, state_path):
    """Nothing of the addon is left."""
    state = _load(state_path)
    cr = env.cr
    module = env["ir.module.module"].search([("name", "=", "mkt_campaign")])
    _check(module.state == "uninstalled", "module state is uninstalled", module.state)
    cr.execute("""SELECT relname, relkind FROM pg_class c
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = current_schema() AND relname LIKE 'mkt\\_%%'
                    AND relkind IN ('r', 'v', 'm', 'S')""")
    rows = cr.fetchall()
    _check(not [r for r in rows if r[1] == "r"], "no mkt_* table left", str(rows))
    _check(not [r for r in rows if r[1] in ("v", "m")], "no SQL view (mkt_event) left", str(rows))
    _check(not [r for r in rows if r[1] == "S"], "no sequence left", str(rows))
    _check(
        not [r for r in rows if r[0] == "mkt_campaign_report"],
        "the statistics view (mkt_campaign_report) is dropped",
        str(rows),
    )
    cr.execute("""SELECT table_name, column_name FROM information_schema.columns
                  WHERE table_schema = current_schema() AND column_name LIKE 'mkt\\_%%'""")
    rows = cr.fetchall()
    _check(not rows, "no mkt_* column left on other tables", str(rows))
    cr.execute("""SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
                  AND indexname LIKE '%%mkt%%'""")
    rows = cr.fetchall()
    _check(not rows, "no index of the addon left", str(rows))
    cr.execute("SELECT model FROM ir_model WHERE model LIKE 'mkt.%%'")
    rows = cr.fetchall()
    _check(not rows, "no ir.model row of mkt.* left", str(rows))
    cr.execute(
        "SELECT model, name FROM ir_model_fields WHERE name LIKE 'mkt\\_%%' OR model LIKE 'mkt.%%'"
    )
    rows = cr.fetchall()
    _check(not rows, "no ir.model.fields row of the addon left", str(rows))
    cr.execute("SELECT id FROM ir_cron WHERE id = ANY(%s)", [state["cron_ids"]])
    rows = cr.fetchall()
    _check(not rows, "the addon's crons are deleted", str(rows))
    cr.execute("""SELECT c.id, c.cron_name FROM ir_cron c
                  JOIN ir_act_server a ON a.id = c.ir_actions_server_id
                  WHERE a.code LIKE '%%mkt%%'""")
    rows = cr.fetchall()
    _check(not rows, "no cron calling the addon left", str(rows))
    cr.execute(
        "SELECT id, name->>'en_US' FROM ir_act_server WHERE id = ANY(%s)",
        [state["server_action_ids"]],
    )
    rows = cr.fetchall()
    _check(not rows, "server actions created by the addon are deleted", str(rows))
    cr.execute(
        "SELECT id, name->>'en_US' FROM ir_act_server"
        " WHERE code LIKE '%%mkt.%%' OR code LIKE '%%mkt\\_%%'"
    )
    rows = cr.fetchall()
    _check(not rows, "no server action calling the addon left", str(rows))
    cr.execute("SELECT key FROM ir_config_parameter WHERE key LIKE 'mkt\\_campaign.%%'")
    rows = cr.fetchall()
    _check(not rows, "no mkt_campaign.* setting left", str(rows))
    cr.execute("SELECT module, name, model FROM ir_model_data WHERE module = 'mkt_campaign'")
    rows = cr.fetchall()
    _check(not rows, "no ir.model.data of the module left", str(rows[:10]))
    cr.execute(
        "SELECT id FROM ir_ui_view WHERE arch_db::text LIKE '%%mkt\\_%%' OR model LIKE 'mkt.%%'"
    )
    rows = cr.fetchall()
    _check(not rows, "no view of the addon left", str(rows))
    cr.execute("SELECT id, name->>'en_US' FROM ir_act_window WHERE res_model LIKE 'mkt.%%'")
    rows = cr.fetchall()
    _check(not rows, "no window action of the addon left", str(rows))
    cr.execute("SELECT name FROM res_groups_privilege WHERE name->>'en_US' = 'Marketing Campaigns'")
    rows = cr.fetchall()
    _check(not rows, "no group privilege of the addon left", str(rows))


def after_reinstall(env, state_path):
    module = env["ir.module.module"].search([("name", "=", "mkt_campaign")])
    _check(module.state == "installed", "reinstalled", module.state)
    cr = env.cr
    cr.execute("SELECT relkind FROM pg_class WHERE relname = 'mkt_event'")
    _check(cr.fetchone() == ("v",), "the mkt_event view is back")
    cr.execute("SELECT relkind FROM pg_class WHERE relname = 'mkt_campaign_report'")
    _check(cr.fetchone() == ("v",), "the mkt_campaign_report view is back")
    campaign = env.ref("mkt_campaign.mkt_campaign_welcome_demo", raise_if_not_found=False)
    _check(bool(campaign), "demo campaign is back")
    if campaign:
        campaign = _launch_demo(env)
        processed = env["mkt.trace"].search_count(
            [("campaign_id", "=", campaign.id), ("state", "=", "processed")]
        )
        _check(processed > 0, "reinstalled addon launches and sends", f"{processed} processed")


# ----------------------------------------------------------------------
# Upgrade from the previous release
# ----------------------------------------------------------------------


def _snapshot(env):
    cr = env.cr
    cr.execute("SELECT id, state FROM mkt_campaign ORDER BY id")
    campaigns = cr.fetchall()
    cr.execute("SELECT id, campaign_id, res_id, state FROM mkt_participant ORDER BY id")
    participants = cr.fetchall()
    cr.execute("SELECT id, participant_id, activity_id, state FROM mkt_trace ORDER BY id")
    traces = cr.fetchall()
    return {"campaigns": campaigns, "participants": participants, "traces": traces}


def before_upgrade(env, state_path):
    """With the previous release's code: a running campaign, some steps
    processed, some scheduled."""
    campaign = _launch_demo(env)
    # a second campaign on leads, launched, its first steps still to send
    lead_campaign = env["mkt.campaign"].create(
        {
            "name": "Leads follow-up",
            "model_id": env["ir.model"]._get_id("crm.lead"),
            "domain": "[('email_from', 'ilike', '@example.com')]",
            "mode": "normal",
            "activity_ids": [
                (
                    0,
                    0,
                    {
                        "name": "Catalog",
                        "activity_type": "email",
                        "trigger_type": "begin",
                        "interval_number": 1,
                        "interval_type": "hours",
                        "subject": "Our catalog, {{ object.contact_name }}",
                        "body_html": "<p>Hello, here is our catalog.</p>",
                    },
                )
            ],
        }
    )
    lead_campaign.action_start()
    env.cr.commit()
    env.invalidate_all()
    states = (
        env["mkt.trace"]
        .search([("campaign_id", "in", (campaign | lead_campaign).ids)])
        .mapped("state")
    )
    _check("processed" in states, "old release: steps processed", str(states))
    _check("scheduled" in states, "old release: steps scheduled", str(states))
    _save(state_path, {**_runtime_records(env), **_snapshot(env)})


def after_upgrade(env, state_path):
    before = _load(state_path)
    after = _snapshot(env)
    for key in ("campaigns", "participants", "traces"):
        old = {tuple(row) for row in before[key]}
        new = {tuple(row) for row in after[key]}
        missing = old - new
        _check(
            not missing,
            f"every {key[:-1]} kept with its state ({len(old)})",
            f"{len(missing)} missing or changed, e.g. {sorted(missing)[:3]}",
        )
    # time goes on: the scheduled steps come due
    scheduled = env["mkt.trace"].search([("state", "=", "scheduled")])
    _check(bool(scheduled), "scheduled steps after the upgrade", str(len(scheduled)))
    past = fields.Datetime.now() - timedelta(minutes=1)
    env.cr.execute(
        "UPDATE mkt_trace SET schedule_date = %s WHERE id = ANY(%s)", [past, scheduled.ids]
    )
    env.cr.commit()
    env.invalidate_all()
    _queue_pass(env)
    env.cr.commit()
    states = scheduled.mapped("state")
    _check(
        all(s == "processed" for s in states),
        f"queue pass after the upgrade processed the {len(scheduled)} scheduled steps",
        str({s: states.count(s) for s in set(states)}),
    )
    errors = scheduled.filtered(lambda t: t.state != "processed").mapped("error_message")
    if errors:
        print("   reasons: " + "; ".join(sorted(set(map(str, errors)))[:5]))
