#!/usr/bin/env python3
"""Benchmark the Workflow tab's figures: a campaign of 30 steps and N queue rows.

Not part of the addon: a standalone script run against a database where
mkt_campaign is installed.

    python3 bench/bench_workflow.py -c /tmp/dev.conf -d t_bench --rows 1000000

It creates a campaign on contacts with a 30-step workflow (a chain of e-mail
steps), inserts N queue rows spread over its steps and states (one
INSERT ... SELECT, processed dates over the last 20 days, a share opened and
clicked, 1% of test rows), then prints the time of
``campaign.get_workflow_figures()`` (what the tree loads when the campaign
opens and at each refresh) and of the dashboard card's figures (the campaign's
delivery counts and 15-day graph), best and median of 5 runs.

Everything it created is deleted at the end unless ``--keep``.
"""

import argparse
import logging
import statistics
import time

NAME = "Bench workflow figures"


def log(msg, *args):
    print(msg % args if args else msg, flush=True)


def timed(func, runs=5):
    durations = []
    for _run in range(runs):
        start = time.perf_counter()
        func()
        durations.append(time.perf_counter() - start)
    return min(durations), statistics.median(durations)


def cleanup(env):
    campaigns = env["mkt.campaign"].with_context(active_test=False).search([("name", "=", NAME)])
    if campaigns:
        env.cr.execute("DELETE FROM mkt_trace WHERE campaign_id = ANY(%s)", [campaigns.ids])
        campaigns.unlink()
        env.flush_all()


def generate(env, rows, steps):
    from odoo.tools import SQL  # noqa: PLC0415

    campaign = env["mkt.campaign"].create(
        {
            "name": NAME,
            "model_id": env["ir.model"]._get_id("res.partner"),
        }
    )
    parent = env["mkt.activity"]
    for index in range(steps):
        parent = env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": f"Bench step {index + 1}",
                "activity_type": "email",
                "subject": "Hello {{ object.name }}",
                "body_html": "<p>Hello</p>",
                "trigger_type": "after_parent" if parent else "begin",
                "parent_id": parent.id,
            }
        )
    env.flush_all()
    activity_ids = campaign.activity_ids.ids
    # queue rows have no foreign key to participants (engine_fields.py):
    # one fake participant id per row keeps the unique step index happy
    env.cr.execute(
        SQL(
            """
        INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id, state,
                               schedule_date, processed_date, is_test, open_datetime,
                               click_datetime)
        SELECT g, (%(activities)s)[1 + g %% %(steps)s], %(campaign)s, g,
               (ARRAY['processed', 'processed', 'processed', 'scheduled', 'rejected',
                      'failed', 'canceled'])[1 + g %% 7],
               now() - (g %% 20) * interval '1 day',
               CASE WHEN g %% 7 = 3 THEN NULL ELSE now() - (g %% 20) * interval '1 day' END,
               g %% 100 = 0,
               CASE WHEN g %% 3 = 0 THEN now() END,
               CASE WHEN g %% 10 = 0 THEN now() END
          FROM generate_series(1, %(rows)s) g
        """,
            activities=activity_ids,
            steps=len(activity_ids),
            campaign=campaign.id,
            rows=rows,
        )
    )
    env.cr.execute("ANALYZE mkt_trace")
    return campaign


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default="/tmp/dev.conf")
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()

    import odoo  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415

    odoo.tools.config.parse_config(["-c", args.config, "-d", args.database])
    logging.getLogger("odoo").setLevel(logging.WARNING)
    registry = Registry(args.database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        cleanup(env)
        start = time.perf_counter()
        campaign = generate(env, args.rows, args.steps)
        cr.commit()
        log(
            "generated %s steps and %s queue rows in %.1f s",
            args.steps,
            args.rows,
            time.perf_counter() - start,
        )
        try:

            def figures():
                env.invalidate_all()
                campaign.get_workflow_figures()

            def card():
                env.invalidate_all()
                campaign.read(["sent_count", "open_rate", "click_rate", "dashboard_graph"])

            tree_best, tree_median = timed(figures)
            card_best, card_median = timed(card)
        finally:
            if not args.keep:
                cleanup(env)
                cr.commit()
            else:
                log("Data kept: the next run deletes it first")
    log("")
    log("%-34s %8s / %s", "steps / queue rows", args.steps, args.rows)
    log(
        "%-34s %8.3f s best, %.3f s median   (target < 1 s)",
        "workflow figures (tree)",
        tree_best,
        tree_median,
    )
    log("%-34s %8.3f s best, %.3f s median", "dashboard card figures", card_best, card_median)


if __name__ == "__main__":
    main()
