#!/usr/bin/env python3
"""Benchmark: one e-mail campaign drained by 1, then by 2 worker PROCESSES.

Standalone: not part of the addon's Python package, not run by CI.  It needs an
existing database where mkt_campaign is installed, and only ever talks to
127.0.0.1 (PostgreSQL as configured, and the loopback SMTP sink of
bench/bench_campaign.py, whose helpers it imports)::

    python3 bench/bench_workers.py --db <dbname> -c <odoo.conf> --contacts 10000 [--workers 1,2]

What it does, in one run:

0. generates N contacts (bench_campaign.generate_contacts) and an
   ``ir.mail_server`` on the loopback sink (a child process);
1. for each worker count W (default 1 then 2): a campaign with one e-mail step
   on those contacts is launched (enrolment is not timed), then W worker
   processes are started, each a separate Odoo registry (as an Odoo server's
   cron worker is, like tests/worker_process.py) calling the queue's cron
   method ``mkt.trace._cron_execute_activities()`` until nothing is due.  The
   workers load their registry first and start together; the time runs from
   their start to the last message received by the sink;
2. the sink checks every message (one bench recipient, the subject rendered
   for that very contact) and that nobody received the campaign twice;
3. prints mails/s for each W and the ratio to one worker, and the load average.

The workers share the queue as Odoo's cron jobs do (SKIP LOCKED claims, one
session lock per worker): this is what Settings > Parallel Queue Workers
(several cron jobs) or several Odoo servers on one database give.
Generated data is deleted at the end (bench_campaign.cleanup).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_bench_campaign():
    spec = importlib.util.spec_from_file_location("mkt_bench_campaign", HERE / "bench_campaign.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bc = load_bench_campaign()


# ----------------------------------------------------------------------
# a worker process
# ----------------------------------------------------------------------


def drain_queue(env):
    """Run the queue's cron method, committing, until nothing is due;
    returns how many runs it took."""
    Trace = env["mkt.trace"]
    calls = 0
    while True:
        Trace._cron_execute_activities()
        calls += 1
        env.cr.commit()
        if not Trace._count_due():
            return calls


def worker(config, dbname, log_level):
    """One Odoo worker: load the registry, say 'ready', wait for 'go' on
    stdin, then run the queue's cron method until nothing is due."""
    import warnings

    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        ["-c", config, "-d", dbname, f"--log-level={log_level}"], setup_logging=True
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    registry = Registry(dbname)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        Trace = env["mkt.trace"]
        Trace._count_due()  # warm up
        cr.rollback()
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        t0 = time.perf_counter()
        calls = drain_queue(env)
        print(f"done {calls} {time.perf_counter() - t0:.3f}", flush=True)


# ----------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------


def start_workers(count, args):
    processes = []
    for _n in range(count):
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    "-c",
                    args.config,
                    "--db",
                    args.db,
                    "--log-level",
                    args.log_level,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                # a session of its own, as a separate server would run: with the
                # kernel's scheduler autogroups (Linux desktops and shared hosts)
                # the processes of one session share one CPU share
                start_new_session=True,
            )
        )
    for process in processes:
        line = None
        while line != "ready":
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("a worker did not start (see its log above)")
            line = line.strip()
    return processes


def sink_done_at(sink, target):
    """When the sink had ``target`` messages (now, if it has them already)."""
    sink.wait_for(target, 10)
    return time.perf_counter()


def drain(count, env, server, sink, n, args):
    """Launch a fresh campaign and drain its queue with ``count`` workers."""
    cr = env.cr
    campaign = env["mkt.campaign"].create(
        {
            "name": f"Bench campaign workers {count}",
            "model_id": env["ir.model"]._get_id("res.partner"),
            "domain": repr([("email", "=like", bc.EMAIL_LIKE)]),
            "unique_field_id": env["ir.model.fields"]._get("res.partner", "email").id,
        }
    )
    activity = env["mkt.activity"].create(
        {
            "name": "Bench e-mail",
            "campaign_id": campaign.id,
            "activity_type": "email",
            "trigger_type": "begin",
            "subject": bc.SUBJECT,
            "body_html": bc.BODY,
        }
    )
    activity.mailing_id.write({"email_from": bc.SENDER, "mail_server_id": server.id})
    campaign.action_start()
    cr.commit()
    cr.execute(
        "SELECT count(*) FROM mkt_trace WHERE campaign_id = %s AND state = 'scheduled'",
        [campaign.id],
    )
    queued = cr.fetchone()[0]

    processes = start_workers(count, args)
    base = sink.count()
    t0 = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    # the end: the last worker's last commit (not its interpreter's exit) and
    # the sink's last message
    outputs, ends = [], []
    for process in processes:
        for line in process.stdout:
            if line.startswith("done"):
                ends.append(time.perf_counter())
                outputs.append(line.strip())
                break
    received = sink.wait_for(base + n, 10) - base
    seconds = max([*ends, sink_done_at(sink, base + n)]) - t0
    for process in processes:
        output, _ = process.communicate(timeout=args.timeout)
        if process.returncode:
            print(f"    !! a worker exited with {process.returncode}: {output}")
    cr.commit()  # a fresh snapshot: the workers' commits
    cr.execute(
        "SELECT state, count(*) FROM mkt_trace WHERE campaign_id = %s GROUP BY state", [campaign.id]
    )
    states = dict(cr.fetchall())
    check = sink.ask("stats")
    rate = received / seconds if seconds else 0.0
    print(
        f"[{count} worker{'s' if count > 1 else ''}] {received:,} mails received in "
        f"{seconds:.2f} s -> {rate:,.0f} mails/s ({queued:,} queued; workers: "
        f"{'; '.join(outputs)})"
    )
    print(f"    mkt.trace states {states}")
    bc.print_check(check, n)
    return {"count": received, "seconds": seconds, "rate": rate, "check": check, "states": states}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database where mkt_campaign is installed")
    parser.add_argument("-c", "--config", required=True, help="Odoo configuration file")
    parser.add_argument("--contacts", type=int, default=10000, help="number of contacts (N)")
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to measure, in order (default 1,2)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="mkt_campaign.batch_size for this run (default: as configured)",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--log-level", default="warn")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.config, args.db, args.log_level)
    n = args.contacts
    counts = [int(c) for c in args.workers.split(",") if c.strip()]

    sink = bc.Sink(sample_every=max(1, n // 200))  # before any database connection
    import warnings

    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        ["-c", args.config, "-d", args.db, f"--log-level={args.log_level}"], setup_logging=True
    )
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    registry = Registry(args.db)
    load_start = os.getloadavg()
    results = {}
    try:
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            if "mkt.campaign" not in env:
                sys.exit(f"mkt_campaign is not installed in {args.db}")
            print(
                f"database {args.db}, {n:,} contacts, workers {counts}, "
                f"{os.cpu_count()} CPUs, load average {load_start[0]:.2f} "
                f"{load_start[1]:.2f} {load_start[2]:.2f}"
            )
            bc.cleanup(env, quiet=True)
            Params = env["ir.config_parameter"].sudo()
            old_batch = Params.get_param("mkt_campaign.batch_size")
            if args.batch_size:
                Params.set_param("mkt_campaign.batch_size", args.batch_size)
            print(
                f"batch size {Params.get_param('mkt_campaign.batch_size', 500)}, chunk size "
                f"{Params.get_param('mkt_campaign.send_chunk_size', 50)}"
            )
            cr.commit()
            try:
                bc.generate_contacts(env, n)
                cr.execute("ANALYZE res_partner")
                server = env["ir.mail_server"].create(
                    {
                        "name": "mkt_campaign bench sink",
                        "smtp_host": "127.0.0.1",
                        "smtp_port": sink.port,
                        "smtp_encryption": "none",
                        "sequence": 0,
                    }
                )
                cr.commit()
                for count in counts:
                    results[count] = drain(count, env, server, sink, n, args)
            finally:
                cr.rollback()
                if args.batch_size:
                    Params.set_param("mkt_campaign.batch_size", old_batch or 500)
                print("cleaning up")
                bc.cleanup(env)
                cr.commit()
    finally:
        sink.stop()
    load_end = os.getloadavg()

    print()
    print(f"SUMMARY ({n:,} contacts, one e-mail step, loopback SMTP sink)")
    base = results.get(counts[0])
    ok = True
    for count, r in results.items():
        check = r["check"]
        clean = not check["duplicates"] and check["distinct"] == n and r["count"] == n
        ok &= clean
        ratio = f"{r['rate'] / base['rate']:.2f}x" if base and base["rate"] else "n/a"
        print(
            f"  {count} worker process(es): {r['rate']:,.0f} mails/s ({r['seconds']:.2f} s), "
            f"{ratio} of {counts[0]}; every contact once: {'yes' if clean else 'NO'}"
        )
    if 1 in results and 2 in results and results[1]["rate"]:
        ratio = results[2]["rate"] / results[1]["rate"]
        print(f"  2 workers / 1 worker: {ratio:.2f}x (target >= 1.5x)")
    print(
        f"  load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} "
        f"({os.cpu_count()} CPUs; other processes share them)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
