#!/usr/bin/env python3
"""Benchmark of the WhatsApp channel: a campaign's WhatsApp step against the
loopback Graph API (tests/loopback_whatsapp.py, run in a child process).

Standalone: not part of the addon's Python package, not run by CI.  It needs an
existing database where mkt_campaign is installed, and only ever talks to
127.0.0.1::

    python3 bench/bench_whatsapp.py --db <dbname> -c <odoo.conf> --messages 5000 [--rate 80]

What it does, in one run:

0. generates N contacts with a phone number (bench_campaign.generate_contacts),
   points the WhatsApp settings at the loopback API for the run (restored at
   the end) with ``mkt_campaign.whatsapp_rate`` = ``--rate`` (default: the
   setting, 80), and a template approved there;
1. a campaign with one WhatsApp step on those contacts, launched (not timed);
2. ``mkt.trace._cron_execute_activities()`` until nothing is due
   (bench_workers.drain_queue): messages/s
   end to end, and the rate the API saw (first to last message accepted,
   and the busiest second);
3. checks that every contact got exactly one message and that every step
   holds its message id.

Generated data is deleted at the end (bench_campaign.cleanup and the template).
"""

import argparse
import importlib.util
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = "mkt_bench_whatsapp"
PARAMS = (
    "whatsapp_endpoint",
    "whatsapp_token",
    "whatsapp_account_id",
    "whatsapp_phone_number_id",
    "whatsapp_rate",
)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bc = _load("mkt_bench_campaign", HERE / "bench_campaign.py")
bw = _load("mkt_bench_workers", HERE / "bench_workers.py")


def api_process(conn):
    """Child: the loopback Graph API; answers the parent's requests."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    loopback = _load("mkt_bench_loopback_whatsapp", HERE.parent / "tests" / "loopback_whatsapp.py")
    server = loopback.LoopbackWhatsAppServer(token="bench-token", auto_approve=True).start()
    conn.send(server.endpoint)
    try:
        while True:
            command = conn.recv()
            if command == "stats":
                with server.lock:
                    to = Counter(m["to"] for m in server.messages)
                    stamps = sorted(server.sent_at)
                    conn.send(
                        {
                            "messages": len(server.messages),
                            "distinct": len(to),
                            "twice": sum(1 for c in to.values() if c > 1),
                            "stamps": stamps,
                            "connections": server.connections,
                        }
                    )
            elif command == "stop":
                conn.send(True)
                break
    finally:
        server.stop()


class Api:
    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=api_process, args=(child,), daemon=True, name="bench-whatsapp-api"
        )
        self.process.start()
        if not self.conn.poll(15):
            raise RuntimeError("the loopback WhatsApp API did not start")
        self.endpoint = self.conn.recv()

    def stats(self):
        self.conn.send("stats")
        return self.conn.recv()

    def stop(self):
        try:
            self.conn.send("stop")
            self.conn.recv()
        except (EOFError, OSError):
            pass
        self.process.join(10)


def busiest_second(stamps):
    best, j = 0, 0
    for i, stamp in enumerate(stamps):
        while stamp - stamps[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database where mkt_campaign is installed")
    parser.add_argument("-c", "--config", required=True, help="Odoo configuration file")
    parser.add_argument("--messages", type=int, default=5000, help="number of contacts (N)")
    parser.add_argument("--rate", type=int, help="mkt_campaign.whatsapp_rate for the run")
    parser.add_argument("--log-level", default="warn")
    args = parser.parse_args(argv)
    n = args.messages

    api = Api()  # before any database connection
    import warnings

    import odoo
    import odoo.modules.module
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        ["-c", args.config, "-d", args.db, f"--log-level={args.log_level}"], setup_logging=True
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    odoo.modules.module.current_test = False  # the queue commits as in production
    registry = Registry(args.db)
    load_start = os.getloadavg()
    ok = False
    try:
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            if "mkt.campaign" not in env:
                sys.exit(f"mkt_campaign is not installed in {args.db}")
            Params = env["ir.config_parameter"].sudo()
            saved = {key: Params.get_param(f"mkt_campaign.{key}") for key in PARAMS}
            rate = args.rate or int(saved["whatsapp_rate"] or 80)
            print(
                f"database {args.db}, {n:,} messages at {rate}/s, {os.cpu_count()} CPUs, "
                f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}"
            )
            bc.cleanup(env, quiet=True)
            env["mkt.whatsapp.template"].search([("template_name", "=", TEMPLATE)]).unlink()
            cr.commit()
            try:
                for key, value in (
                    ("whatsapp_endpoint", api.endpoint),
                    ("whatsapp_token", "bench-token"),
                    ("whatsapp_account_id", "111"),
                    ("whatsapp_phone_number_id", "222"),
                    ("whatsapp_rate", rate),
                ):
                    Params.set_param(f"mkt_campaign.{key}", value)
                bc.generate_contacts(env, n)
                cr.execute("ANALYZE res_partner")
                template = env["mkt.whatsapp.template"].create(
                    {
                        "name": "Bench WhatsApp",
                        "template_name": TEMPLATE,
                        "body": "Hello {{1}}!",
                        "variable_ids": [
                            (0, 0, {"index": 1, "field_path": "name", "sample": "Ann"})
                        ],
                    }
                )
                template.action_submit()
                template.action_refresh_status()  # the loopback approves on first read
                campaign = env["mkt.campaign"].create(
                    {
                        "name": "Bench campaign WhatsApp",
                        "model_id": env["ir.model"]._get_id("res.partner"),
                        "domain": repr([("email", "=like", bc.EMAIL_LIKE)]),
                    }
                )
                step = env["mkt.activity"].create(
                    {
                        "name": "Bench WhatsApp",
                        "campaign_id": campaign.id,
                        "activity_type": "whatsapp",
                        "trigger_type": "begin",
                        "whatsapp_template_id": template.id,
                    }
                )
                campaign.action_start()
                cr.commit()

                t0 = time.perf_counter()
                calls = bw.drain_queue(env)
                seconds = time.perf_counter() - t0
                stats = api.stats()
                cr.execute(
                    """SELECT state, count(*), count(DISTINCT whatsapp_message_id)
                                FROM mkt_trace WHERE activity_id = %s GROUP BY state""",
                    [step.id],
                )
                states = {state: (count, ids) for state, count, ids in cr.fetchall()}
                stamps = stats["stamps"]
                span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
                sent = stats["messages"]
                print(
                    f"[1] WhatsApp step: {sent:,} messages accepted by the API in "
                    f"{seconds:.2f} s ({calls} cron call(s)) -> {sent / seconds:,.1f} msg/s "
                    f"end to end"
                )
                if span:
                    print(
                        f"    rate seen by the API: {(sent - 1) / span:,.1f} msg/s from the "
                        f"first to the last message; busiest second {busiest_second(stamps)} "
                        f"messages as received (the client sends at most {rate} in any "
                        f"second; a loaded machine bunches arrivals); "
                        f"{stats['connections']} TCP connections"
                    )
                print(f"    mkt.trace states (count, distinct message ids): {states}")
                ok = (
                    stats["distinct"] == n
                    and not stats["twice"]
                    and sent == n
                    and states.get("processed") == (n, n)
                )
                print(
                    f"    every contact exactly once: {'yes' if ok else 'NO'} "
                    f"({stats['distinct']:,} distinct numbers, {stats['twice']} twice)"
                )
                print(
                    f"    target >= 70 msg/s sustained over {n:,}: "
                    f"{'met' if sent / seconds >= 70 else 'NOT met'}"
                )
            finally:
                cr.rollback()
                print("cleaning up")
                bc.cleanup(env)
                env["mkt.whatsapp.template"].search([("template_name", "=", TEMPLATE)]).unlink()
                for key, value in saved.items():
                    Params.set_param(f"mkt_campaign.{key}", value or False)
                cr.commit()
    finally:
        api.stop()
    load_end = os.getloadavg()
    print(
        f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} "
        f"({os.cpu_count()} CPUs; other processes share them)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
