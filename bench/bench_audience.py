#!/usr/bin/env python3
"""Benchmark the purchase-behaviour audience filters of mkt_campaign.

Not part of the addon: a standalone script run against a database where
mkt_campaign is installed.

    python3 bench/bench_audience.py -c /tmp/dev.conf -d t_aud_bench --contacts 100000

It generates ``--contacts`` contacts (one INSERT … SELECT), ~1,000 products in
a small category tree, and a purchase history of confirmed sale orders and paid
POS orders (``--orders`` per contact on average, ``--lines`` lines per order on
average, half POS, half sales, over the last two years) with generate_series;
then times ``search_count`` of purchase filters, the main one being two AND
groups joined by OR with a products-bought condition, and prints an
EXPLAIN ANALYZE summary of the slow ones.

The data is committed and VACUUM ANALYZEd (as autovacuum would leave a live
database) before the timings, then deleted at the end; ``--keep`` keeps it,
``--reuse`` benchmarks data kept by an earlier run, ``--cleanup`` deletes it.
All the generated rows are marked (contacts' ref, sale orders' origin, POS
orders' pos_reference, leads' referred, products' default_code): the cleanup
deletes only them.
"""

import argparse
import logging
import re
import sys
import time

MARK = "mkt-bench"
TABLES = (
    "crm_lead",
    "res_partner",
    "sale_order",
    "sale_order_line",
    "pos_order",
    "pos_order_line",
    "product_product",
    "product_template",
)


def log(msg, *args):
    print(msg % args if args else msg, flush=True)


def timed(cr, label, sql, params=None, analyze=None):
    """Run ``sql``, print its time; then ANALYZE the table ``analyze``, so that
    the next statements and the plans of their foreign key checks (prepared at
    first use) see the rows just inserted, not an empty table."""
    start = time.perf_counter()
    cr.execute(sql, params)
    rows = cr.rowcount
    if analyze:
        cr.execute(f"ANALYZE {analyze}")
    elapsed = time.perf_counter() - start
    log("  %-44s %8.2f s  (%s rows)", label, elapsed, rows)
    return elapsed


# ----------------------------------------------------------------------
# Data generation
# ----------------------------------------------------------------------


def order_rows(sequence):
    """SQL of the generated orders: ids from ``sequence``, random customers,
    dates over the last two years, amounts from 5 to 500."""
    return f"""(SELECT nextval('{sequence}') AS id,
                       %(base)s + floor(random() * %(contacts)s)::int AS partner_id,
                       now() AT TIME ZONE 'UTC' - random() * interval '730 days' AS date_order,
                       round((5 + random() * 495)::numeric, 2) AS amount
                  FROM generate_series(1, %(n)s)) s"""


def generate(env, contacts, orders, lines, products):
    cr = env.cr
    log(
        "Generating %d contacts, %d orders, ~%d order lines, %d products",
        contacts,
        contacts * orders,
        contacts * orders * lines,
        products,
    )
    total = time.perf_counter()
    cr.execute(
        "SELECT id FROM res_country WHERE code IN ('BE', 'FR', 'DE', 'NL', 'US') ORDER BY code"
    )
    countries = [r[0] for r in cr.fetchall()]
    company = env.company
    currency = company.currency_id.id

    # -- products: a tree of categories, products created by the ORM (only
    # ~1,000, it keeps product tables consistent), their templates spread over
    # the leaf categories
    start = time.perf_counter()
    Category = env["product.category"]
    root = Category.create({"name": "Bench"})
    parents = Category.create([{"name": f"Bench {i}", "parent_id": root.id} for i in range(5)])
    leaves = Category.create(
        [
            {"name": f"Bench {i}.{j}", "parent_id": parent.id}
            for i, parent in enumerate(parents)
            for j in range(4)
        ]
    )
    templates = env["product.template"].create(
        [
            {
                "name": f"Bench product {i}",
                "default_code": f"{MARK}-{i}",
                "categ_id": leaves[i % len(leaves)].id,
                "list_price": 10 + i % 90,
                "type": "consu",
                "available_in_pos": True,
            }
            for i in range(products)
        ]
    )
    product_ids = templates.product_variant_ids.ids
    env.flush_all()
    log(
        "  %-44s %8.2f s  (%s rows)",
        "products (ORM)",
        time.perf_counter() - start,
        len(product_ids),
    )
    cr.execute("SELECT id FROM uom_uom ORDER BY id LIMIT 1")
    uom = cr.fetchone()[0]

    # -- contacts: one statement. Every 10th contact is a company with two
    # employees (the next two ids), whose commercial entity it is.
    cr.execute("SELECT last_value + 1 FROM res_partner_id_seq")
    base = cr.fetchone()[0] + 10
    timed(
        cr,
        "contacts",
        """
        INSERT INTO res_partner (id, name, complete_name, email, email_normalized,
                                 active, type, is_company, parent_id,
                                 commercial_partner_id, country_id, lang, ref,
                                 autopost_bills, partner_share, customer_rank,
                                 supplier_rank, color, message_bounce,
                                 create_uid, write_uid, create_date, write_date)
        SELECT %(base)s + g, 'Bench contact ' || g, 'Bench contact ' || g,
               'bench' || g || '@example.com', 'bench' || g || '@example.com',
               TRUE, 'contact', g %% 10 = 0,
               CASE WHEN g %% 10 IN (1, 2) THEN %(base)s + g - g %% 10 END,
               CASE WHEN g %% 10 IN (1, 2) THEN %(base)s + g - g %% 10
                    ELSE %(base)s + g END,
               (%(countries)s::int[])[1 + g %% %(ncountries)s], 'en_US', %(mark)s,
               'ask', TRUE, 0, 0, 0, 0, 1, 1, now(), now()
          FROM generate_series(0, %(n)s - 1) g
    """,
        {
            "base": base,
            "n": contacts,
            "countries": countries,
            "ncountries": len(countries),
            "mark": MARK,
        },
    )
    cr.execute("SELECT setval('res_partner_id_seq', %s)", [base + contacts])
    cr.execute("ANALYZE res_partner")

    # -- orders: ids taken from the sequences, partners drawn at random,
    # dates over the last two years, amounts 5 .. 500; the first half of the
    # orders are sale orders, the second half POS orders
    n_orders = contacts * orders
    n_sales = n_orders // 2
    n_pos = n_orders - n_sales
    common = {
        "base": base,
        "contacts": contacts,
        "company": company.id,
        "currency": currency,
        "mark": MARK,
        "uom": uom,
        "products": product_ids,
        "nproducts": len(product_ids),
        "lines": lines,
    }
    timed(
        cr,
        "sale orders",
        """
        INSERT INTO sale_order (id, name, partner_id, partner_invoice_id,
                                partner_shipping_id, company_id, currency_id,
                                currency_rate, date_order, state, origin,
                                amount_untaxed, amount_tax, amount_total,
                                picking_policy, invoice_status, locked,
                                create_uid, write_uid, create_date, write_date)
        SELECT s.id, 'BENCH/' || s.id, s.partner_id, s.partner_id, s.partner_id,
               %(company)s, %(currency)s, 1.0, s.date_order, 'sale', %(mark)s,
               s.amount, 0, s.amount, 'direct', 'no', FALSE, 1, 1, now(), now()
          FROM """
        + order_rows("sale_order_id_seq"),
        {**common, "n": n_sales},
        analyze="sale_order",
    )
    # 1 .. 2 * lines - 1 lines per order (average ``lines``); products drawn
    # with a skew (random()^2): a few best sellers, a long tail
    timed(
        cr,
        "sale order lines",
        """
        INSERT INTO sale_order_line (order_id, order_partner_id, company_id,
                                     currency_id, name, product_id,
                                     product_uom_id, product_uom_qty, price_unit,
                                     customer_lead, state, sequence,
                                     create_uid, write_uid, create_date, write_date)
        SELECT o.id, o.partner_id, %(company)s, %(currency)s, 'Bench line',
               (%(products)s::int[])[1 + floor(random() ^ 2 * %(nproducts)s)::int],
               %(uom)s, 1, round(o.amount_total / 2, 2), 0, 'sale', 10,
               1, 1, now(), now()
          FROM sale_order o,
               generate_series(1, 1 + (o.id %% (2 * %(lines)s - 1))) l
         WHERE o.origin = %(mark)s
    """,
        common,
        analyze="sale_order_line",
    )
    timed(
        cr,
        "POS orders",
        """
        INSERT INTO pos_order (id, name, pos_reference, partner_id, company_id,
                               currency_rate, date_order, state, is_refund,
                               amount_tax, amount_total, amount_paid,
                               amount_return, create_uid, write_uid,
                               create_date, write_date)
        SELECT s.id, 'BENCH-POS/' || s.id, %(mark)s, s.partner_id, %(company)s,
               1.0, s.date_order, CASE WHEN s.id %% 5 = 0 THEN 'done' ELSE 'paid' END,
               FALSE, 0, s.amount, s.amount, 0, 1, 1, now(), now()
          FROM """
        + order_rows("pos_order_id_seq"),
        {**common, "n": n_pos},
        analyze="pos_order",
    )
    timed(
        cr,
        "POS order lines",
        """
        INSERT INTO pos_order_line (order_id, name, full_product_name, product_id,
                                    qty, price_unit, price_subtotal,
                                    price_subtotal_incl, create_uid, write_uid,
                                    create_date, write_date)
        SELECT o.id, 'Bench line', 'Bench line',
               (%(products)s::int[])[1 + floor(random() ^ 2 * %(nproducts)s)::int],
               1, round(o.amount_total / 2, 2), round(o.amount_total / 2, 2),
               round(o.amount_total / 2, 2), 1, 1, now(), now()
          FROM pos_order o,
               generate_series(1, 1 + (o.id %% (2 * %(lines)s - 1))) l
         WHERE o.pos_reference = %(mark)s
    """,
        common,
        analyze="pos_order_line",
    )
    # leads: one for every 10 contacts, the lead's contact drawn at random
    timed(
        cr,
        "leads",
        """
        INSERT INTO crm_lead (name, partner_id, type, active, referred,
                              create_uid, write_uid, create_date, write_date)
        SELECT 'Bench lead ' || g,
               %(base)s + floor(random() * %(contacts)s)::int,
               'opportunity', TRUE, %(mark)s, 1, 1, now(), now()
          FROM generate_series(1, %(n)s) g
    """,
        {**common, "n": max(contacts // 10, 1)},
        analyze="crm_lead",
    )
    env.invalidate_all()
    log("  %-44s %8.2f s", "total generation", time.perf_counter() - total)


def vacuum(dbname):
    """VACUUM ANALYZE the generated tables (as autovacuum would do on a live
    database): index-only scans need the visibility map. Needs autocommit."""
    import psycopg2  # noqa: PLC0415

    from odoo.sql_db import connection_info_for  # noqa: PLC0415

    start = time.perf_counter()
    conn = psycopg2.connect(**connection_info_for(dbname)[1])
    conn.autocommit = True
    with conn.cursor() as cr:
        for table in TABLES:
            cr.execute(f"VACUUM ANALYZE {table}")
    conn.close()
    log("  %-44s %8.2f s", "VACUUM ANALYZE", time.perf_counter() - start)


def cleanup(env):
    """Delete the generated data. Foreign keys to the generated rows come only
    from the generated rows, which go first: as a superuser, skip the checks of
    the ~70 foreign keys to res_partner (session_replication_role)."""
    cr = env.cr
    log("Deleting the benchmark data")
    cr.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cr.fetchone()[0]:
        cr.execute("SET LOCAL session_replication_role = replica")
    timed(
        cr,
        "POS order lines",
        """
        DELETE FROM pos_order_line
         WHERE order_id IN (SELECT id FROM pos_order WHERE pos_reference = %s)""",
        [MARK],
    )
    timed(cr, "POS orders", "DELETE FROM pos_order WHERE pos_reference = %s", [MARK])
    timed(
        cr,
        "sale order lines",
        """
        DELETE FROM sale_order_line
         WHERE order_id IN (SELECT id FROM sale_order WHERE origin = %s)""",
        [MARK],
    )
    timed(cr, "sale orders", "DELETE FROM sale_order WHERE origin = %s", [MARK])
    timed(cr, "leads", "DELETE FROM crm_lead WHERE referred = %s", [MARK])
    timed(cr, "contacts", "DELETE FROM res_partner WHERE ref = %s", [MARK])
    cr.execute("SET LOCAL session_replication_role = DEFAULT")
    templates = (
        env["product.template"]
        .with_context(active_test=False)
        .search([("default_code", "=like", f"{MARK}-%")])
    )
    count = len(templates)
    templates.unlink()
    env["product.category"].search([("name", "=like", "Bench%")], order="id desc").unlink()
    log("  %-44s %8s    (%s rows)", "products", "", count)


# ----------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------


def explain(env, domain, model="res.partner"):
    cr = env.cr
    query = env[model]._search(domain)
    sql = query.select("count(*)")
    cr.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {cr.mogrify(sql.code, sql.params).decode()}")
    plan = [r[0] for r in cr.fetchall()]
    # a summary: the nodes with their actual times, and the totals
    for line in plan:
        if re.search(
            r"->|Execution Time|Planning Time|Sub[Pp]lan|Workers", line
        ) or not line.startswith(" "):
            log("    %s", line[:150])


def bench(env, explain_over, repeat):
    Partner = env["res.partner"]
    n_partners = Partner.with_context(active_test=False).search_count([])
    products = env["product.product"].search(
        [("default_code", "=like", f"{MARK}-%")], order="id", limit=200
    )
    # a best seller and one from the long tail
    p1, p2 = products[0], products[150]
    categ = env["product.category"].search([("name", "=", "Bench 1")], limit=1)
    be = env.ref("base.be")
    main = [
        "|",
        "&",
        ("mkt_product_ids", "in", [p1.id, p2.id]),
        ("mkt_amount_spent_365d", ">", 100),
        "&",
        ("country_id", "=", be.id),
        ("mkt_order_count", ">=", 3),
    ]
    cases = [
        ("res.partner", "main filter (two groups, OR)", main),
        (
            "res.partner",
            "both groups (AND)",
            [
                ("mkt_product_ids", "in", [p1.id, p2.id]),
                ("mkt_amount_spent_365d", ">", 100),
                ("country_id", "=", be.id),
                ("mkt_order_count", ">=", 3),
            ],
        ),
        ("res.partner", "customers", [("mkt_is_customer", "=", True)]),
        ("res.partner", "not customers", [("mkt_is_customer", "=", False)]),
        (
            "res.partner",
            "products bought (in)",
            [("mkt_product_ids", "in", [p1.id, p2.id])],
        ),
        (
            "res.partner",
            "product not bought (not in)",
            [("mkt_product_ids", "not in", [p1.id])],
        ),
        (
            "res.partner",
            "products bought (any name)",
            [("mkt_product_ids", "any", [("name", "ilike", "Bench product 12")])],
        ),
        (
            "res.partner",
            "category bought (with children)",
            [("mkt_product_categ_ids", "in", categ.ids)],
        ),
        ("res.partner", "order count < 2", [("mkt_order_count", "<", 2)]),
        ("res.partner", "amount spent >= 1000", [("mkt_amount_spent", ">=", 1000)]),
        (
            "res.partner",
            "amount spent, 30 days > 0",
            [("mkt_amount_spent_30d", ">", 0)],
        ),
        (
            "res.partner",
            "last purchase in the last 90 days",
            [("mkt_last_purchase_date", ">=", "today -90d")],
        ),
        (
            "res.partner",
            "no purchase (last purchase not set)",
            [("mkt_last_purchase_date", "=", False)],
        ),
        (
            "res.partner",
            "three statistics (AND)",
            [
                ("mkt_order_count", ">=", 2),
                ("mkt_amount_spent", ">", 300),
                ("mkt_last_purchase_date", ">=", "today -365d"),
            ],
        ),
        ("crm.lead", "leads: main filter", main),
    ]
    log("Benchmark on %d contacts (load average %s)", n_partners, _loadavg())
    results = []
    for model, label, domain in cases:
        runs = []
        for _i in range(repeat if label.startswith("main") else 1):
            env.invalidate_all()
            start = time.perf_counter()
            count = env[model].search_count(domain)
            runs.append(time.perf_counter() - start)
        results.append((label, runs, count))
        log(
            "  %-44s %8s s  count=%d",
            label,
            " / ".join(f"{r:.2f}" for r in runs),
            count,
        )
        if min(runs) > explain_over:
            explain(env, domain, model)
    log("Load average after: %s", _loadavg())
    return results


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default="/tmp/dev.conf")
    parser.add_argument("-d", "--database", required=True)
    parser.add_argument("--contacts", type=int, default=100000)
    parser.add_argument("--orders", type=int, default=2, help="orders per contact (average)")
    parser.add_argument("--lines", type=int, default=2, help="lines per order (average)")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument(
        "--explain-over",
        type=float,
        default=1.0,
        help="print an EXPLAIN ANALYZE summary of queries slower than this (s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the main filter (the first one reads from disk)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--reuse", action="store_true", help="benchmark data kept earlier")
    parser.add_argument("--cleanup", action="store_true", help="delete kept data and exit")
    parser.add_argument("--generate-only", action="store_true", help="skip the benchmark")
    args = parser.parse_args()

    import odoo  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415

    odoo.tools.config.parse_config(["-c", args.config, "-d", args.database])
    logging.getLogger("odoo").setLevel(logging.WARNING)
    registry = Registry(args.database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        if args.cleanup:
            cleanup(env)
            cr.commit()
            vacuum(args.database)
            return 0
        if not args.reuse:
            try:
                generate(env, args.contacts, args.orders, args.lines, args.products)
            except BaseException:
                cr.rollback()
                raise
            cr.commit()
            vacuum(args.database)
        try:
            if not args.generate_only:
                bench(env, args.explain_over, args.repeat)
        finally:
            cr.rollback()
            if args.keep or args.reuse:
                log("Data kept; delete it with --cleanup")
            else:
                cleanup(env)
                cr.commit()
                vacuum(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
