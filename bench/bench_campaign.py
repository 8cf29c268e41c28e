#!/usr/bin/env python3
"""Benchmark of mkt_campaign's e-mail path against Odoo's plain mass mailing.

Standalone: not part of the addon's Python package, not run by CI.  It needs an
existing database where mkt_campaign is installed, and only ever talks to
127.0.0.1 (PostgreSQL as configured, and a loopback SMTP sink it starts)::

    python3 bench/bench_campaign.py --db <dbname> -c <odoo.conf> --contacts 10000 [--keep]

What it does, in one run:

0. generates N res.partner contacts with one INSERT ... SELECT generate_series
   (``Bench Contact 0000001`` / ``bench1@bench.example`` / a phone), starts the
   loopback SMTP sink of tests/loopback_smtp.py (imported by path, run in a
   child process so that its CPU and memory are not the benchmark's) and an
   ``ir.mail_server`` pointing at it (sequence 0, also set on both mailings);
1. enrolment: a campaign on res.partner, domain on the bench e-mails, unique
   field e-mail, one e-mail step with placeholders; times ``action_start()``;
2. the campaign e-mail step end to end: ``mkt.trace._cron_execute_activities()``
   until nothing is scheduled and the sink received N messages;
3. the same e-mail as a plain ``mailing.mailing`` through Odoo's standard path:
   ``action_send_mail()`` (composer, auto-commit) then
   ``mail.mail.process_email_queue()`` until the sink received N more (Odoo's
   cron would call it once per hour or so: that cadence is not counted);
4. prints the ratio, SQL queries per mail, RSS peaks, and a summary table.

The sink checks every message (one recipient, a bench address, the subject
rendered for that very contact, no duplicate) and fully parses a sample
(the HTML body must greet the contact by name).

Generated data is deleted at the end (SQL, for speed) unless ``--keep``;
leftovers of an earlier ``--keep`` run are deleted at the start.
"""

import argparse
import importlib.util
import multiprocessing
import os
import re
import resource
import sys
import time
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent.parent
SINK_PATH = ADDON_DIR / "tests" / "loopback_smtp.py"

EMAIL_DOMAIN = "bench.example"
EMAIL_LIKE = f"bench%@{EMAIL_DOMAIN}"  # for =like / SQL LIKE
EMAIL_RE = re.compile(rb"^bench(\d+)@bench\.example$")
# non-ASCII names and subject: encoded words in the headers, UTF-8 bodies
NAME_FMT = "Bénch Cöntact %07d"
SUBJECT = "Hello {{ object.name }} — été ✓"
SUBJECT_FMT = "Hello {name} — été ✓"
# a link (tracked: /r/<code>/m/<trace id>) and the unsubscribe placeholder,
# as an Email Marketing body has them
BODY = (
    '<p>Hi <t t-out="object.name"/>, this is the benchmark.</p>'
    '<p><a href="https://shop.example.com/offer">Our offer</a></p>'
    '<p><a href="/unsubscribe_from_list">Unsubscribe</a></p>'
)
TRACKED_LINK_RE = re.compile(r'href="[^"]*/r/\w+/m/\d+"')
UNSUBSCRIBE_RE = re.compile(r'href="[^"]*/mailing/\d+/(confirm_)?unsubscribe\?[^"]*document_id=\d+')
SENDER = f'"Bench Sender" <sender@{EMAIL_DOMAIN}>'


# ----------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------


def maxrss_mb():
    """Peak RSS of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhasePeak:
    """Peak RSS of one phase: Linux lets a process reset its high-water mark
    (``echo 5 > /proc/self/clear_refs``) and reads it back as VmHWM; elsewhere
    the cumulative ru_maxrss is given."""

    def __init__(self):
        self.resettable = True
        self.overall = maxrss_mb()

    def _status(self, key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return None

    def start(self):
        self.overall = max(self.overall, maxrss_mb(), self.current() or 0)
        if self.resettable:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
            except OSError:
                self.resettable = False
        self.at_start = self.current()

    def current(self):
        try:
            return self._status("VmRSS")
        except OSError:
            return None

    def stop(self):
        peak = self._status("VmHWM") if self.resettable else maxrss_mb()
        self.overall = max(self.overall, peak or 0, maxrss_mb())
        return peak


# ----------------------------------------------------------------------
# the SMTP sink, in a child process
# ----------------------------------------------------------------------


def load_sink_module():
    spec = importlib.util.spec_from_file_location("mkt_bench_loopback_smtp", SINK_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_message(received, stats, sample_every):
    """Cheap checks on every message, a full parse of a sample."""
    stats["messages"] += 1
    rcpts = received.rcpt_tos
    if len(rcpts) != 1:
        stats["bad_recipients"] += 1
        return
    match = EMAIL_RE.match(rcpts[0].encode())
    if not match:
        stats["bad_recipients"] += 1
        return
    number = int(match.group(1))
    if number in stats["seen"]:
        stats["duplicates"] += 1
    stats["seen"].add(number)
    name = NAME_FMT % number
    _check_content(received, name, stats)
    if stats["messages"] % sample_every == 1 or sample_every == 1:
        _check_sample(received, name, stats)


def _check_content(received, name, stats):
    """Every message: its subject, the placeholder rendered, a tracked link,
    the recipient's unsubscribe link and the List-Unsubscribe header."""
    rcpts = received.rcpt_tos
    # the HTML part decoded (compat32 parser: no header objects, cheap)
    import email
    import email.header
    import email.policy

    light = email.message_from_bytes(received.raw, policy=email.policy.compat32)

    def header(name):
        # unfolded, encoded words (RFC 2047) decoded
        value = re.sub(r"\r?\n(?=[ \t])", "", light[name] or "")
        return str(email.header.make_header(email.header.decode_header(value)))

    subject = header("Subject")
    if subject != SUBJECT_FMT.format(name=name):
        stats["bad_subject"] += 1
        if len(stats["examples"]) < 3:
            stats["examples"].append(f"subject {subject!r} for {rcpts[0]}")
    # every message: the placeholder rendered, a tracked link, the
    # recipient's unsubscribe link and the List-Unsubscribe header
    html = ""
    for part in light.walk():
        if part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            break
    problems = []
    if f"Hi {name}," not in html:
        problems.append("placeholder")
    if not TRACKED_LINK_RE.search(html):
        problems.append("tracked link")
    if not UNSUBSCRIBE_RE.search(html):
        problems.append("unsubscribe link")
    if "unsubscribe_oneclick" not in header("List-Unsubscribe"):
        problems.append("List-Unsubscribe")
    if problems:
        stats["bad_content"] += 1
        if len(stats["examples"]) < 3:
            stats["examples"].append(f"{rcpts[0]}: no {', '.join(problems)}")


def _check_sample(received, name, stats):
    """A sample of the messages: the full parse of the HTML body and To."""
    rcpts = received.rcpt_tos
    stats["parsed"] += 1
    message = received.message
    body = message.get_body(preferencelist=("html",))
    html = body.get_content() if body else ""
    if f"Hi {name}," not in html or "t-out" in html:
        stats["bad_body"] += 1
        if len(stats["examples"]) < 3:
            stats["examples"].append(f"body of {rcpts[0]}: {html[:200]!r}")
    if rcpts[0] not in (message["To"] or ""):
        stats["bad_recipients"] += 1


def _new_stats():
    return {
        "messages": 0,
        "parsed": 0,
        "duplicates": 0,
        "bad_recipients": 0,
        "bad_subject": 0,
        "bad_body": 0,
        "bad_content": 0,
        "seen": set(),
        "examples": [],
    }


def sink_process(conn, sample_every):
    """Child: run the sink, check what arrives, answer the parent's requests."""
    module = load_sink_module()
    server = module.LoopbackSMTPServer(host="127.0.0.1", port=0, keep_messages=True)
    server.start()
    conn.send(server.port)
    stats = _new_stats()
    try:
        while True:
            command = conn.recv() if conn.poll(0.05) else None
            for received in server.take():
                _check_message(received, stats, sample_every)
            if command is None:
                continue
            if command == "count":
                conn.send(server.count)
            elif command == "stats":
                # drained above: everything counted so far is checked
                result = {k: v for k, v in stats.items() if k != "seen"}
                result["distinct"] = len(stats["seen"])
                result["count"] = server.count
                result["connections"] = server.connections_total
                conn.send(result)
                stats = _new_stats()
            elif command == "stop":
                conn.send(server.count)
                break
    finally:
        server.stop()


class Sink:
    def __init__(self, sample_every):
        ctx = multiprocessing.get_context("fork")
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(
            target=sink_process,
            args=(child_conn, sample_every),
            name="bench-smtp-sink",
            daemon=True,
        )
        self.process.start()
        if not self.conn.poll(15):
            raise RuntimeError("the loopback SMTP sink did not start")
        self.port = self.conn.recv()

    def ask(self, command):
        self.conn.send(command)
        return self.conn.recv()

    def count(self):
        return self.ask("count")

    def wait_for(self, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            count = self.count()
            if count >= n or time.monotonic() > deadline:
                return count
            time.sleep(0.05)

    def stop(self):
        try:
            self.ask("stop")
        except (EOFError, OSError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()


# ----------------------------------------------------------------------
# data
# ----------------------------------------------------------------------


def generate_contacts(env, count):
    """N partners in one INSERT ... SELECT generate_series. Every other column
    is copied from a template partner created by the ORM, so that the NOT NULL
    columns of whatever modules are installed get their defaults."""
    from odoo.tools import SQL

    template = env["res.partner"].create({"name": "Bench template", "email": False})
    env.flush_all()
    cr = env.cr
    cr.execute("""SELECT column_name FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'res_partner'""")
    columns = {row[0] for row in cr.fetchall()}
    computed = {
        "id": SQL("s.id"),
        "name": SQL("s.name"),
        "complete_name": SQL("s.name"),
        "email": SQL("s.email"),
        "email_normalized": SQL("s.email"),
        "phone": SQL("'+32 470 ' || lpad(s.n::text, 6, '0')"),
        "phone_sanitized": SQL("'+32470' || lpad(s.n::text, 6, '0')"),
        "commercial_partner_id": SQL("s.id"),
        "create_date": SQL("now() AT TIME ZONE 'UTC'"),
        "write_date": SQL("now() AT TIME ZONE 'UTC'"),
    }
    names = sorted(columns)
    values = [computed[c] if c in computed else SQL("t.%s", SQL.identifier(c)) for c in names]
    cr.execute(
        SQL(
            """
        INSERT INTO res_partner (%(cols)s)
        SELECT %(values)s
          FROM (SELECT nextval('res_partner_id_seq') AS id, n,
                       %(prefix)s || lpad(n::text, 7, '0') AS name,
                       'bench' || n || '@' || %(domain)s AS email
                  FROM generate_series(1, %(count)s) n) s,
               res_partner t
         WHERE t.id = %(template)s
        """,
            cols=SQL(", ").join(SQL.identifier(c) for c in names),
            values=SQL(", ").join(values),
            prefix=NAME_FMT.split("%")[0],
            domain=EMAIL_DOMAIN,
            count=count,
            template=template.id,
        )
    )
    inserted = cr.rowcount
    template.unlink()
    env["res.partner"].invalidate_model()
    return inserted


def cleanup(env, quiet=False):
    """Delete everything a run made, with SQL where there are many rows."""
    from odoo.tools import SQL

    cr = env.cr
    env.flush_all()
    cr.execute(SQL("SELECT id FROM res_partner WHERE email LIKE %s", EMAIL_LIKE))
    partner_ids = [row[0] for row in cr.fetchall()]
    campaigns = (
        env["mkt.campaign"]
        .with_context(active_test=False)
        .search([("name", "=like", "Bench campaign%")])
    )
    mailings = (
        env["mailing.mailing"]
        .with_context(active_test=False)
        .search(
            ["|", ("subject", "=", SUBJECT), ("mkt_activity_id.campaign_id", "in", campaigns.ids)]
        )
        | campaigns.activity_ids.mailing_id
    )
    mailing_ids = mailings.ids
    counts = {}

    def run(label, query):
        cr.execute(query)
        counts[label] = cr.rowcount

    if mailing_ids:
        run(
            "mailing_trace",
            SQL("DELETE FROM mailing_trace WHERE mass_mailing_id = ANY(%s)", mailing_ids),
        )
        # a mail.mail is a mail.message (_inherits): deleting the message
        # cascades to the mail
        run(
            "mail_message (mails)",
            SQL(
                """DELETE FROM mail_message WHERE id IN (
                   SELECT mail_message_id FROM mail_mail WHERE mailing_id = ANY(%s))""",
                mailing_ids,
            ),
        )
    if partner_ids:
        run(
            "mail_message (partners)",
            SQL(
                "DELETE FROM mail_message WHERE model = 'res.partner' AND res_id = ANY(%s)",
                partner_ids,
            ),
        )
    if campaigns:
        run("mkt_trace", SQL("DELETE FROM mkt_trace WHERE campaign_id = ANY(%s)", campaigns.ids))
        run(
            "mkt_participant",
            SQL("DELETE FROM mkt_participant WHERE campaign_id = ANY(%s)", campaigns.ids),
        )
        cr.execute(
            SQL("UPDATE mkt_campaign SET state = 'stopped' WHERE id = ANY(%s)", campaigns.ids)
        )
        env.invalidate_all()
        utm = campaigns.utm_campaign_id
        campaigns.unlink()
        counts["mkt_campaign"] = len(campaigns)
        mailings.exists().unlink()
        counts["mailing_mailing"] = len(mailing_ids)
        utm.exists().unlink()
    elif mailings:
        mailings.unlink()
        counts["mailing_mailing"] = len(mailing_ids)
    run(
        "mailing_contact (lists)",
        SQL(
            """DELETE FROM mailing_contact WHERE id IN (
               SELECT s.contact_id FROM mailing_subscription s
                 JOIN mailing_list l ON l.id = s.list_id WHERE l.name LIKE %s)""",
            "Bench list %",
        ),
    )
    run("mailing_list", SQL("DELETE FROM mailing_list WHERE name LIKE %s", "Bench list %"))
    if partner_ids:
        run("res_partner", SQL("DELETE FROM res_partner WHERE id = ANY(%s)", partner_ids))
    servers = (
        env["ir.mail_server"]
        .with_context(active_test=False)
        .search([("name", "=", "mkt_campaign bench sink")])
    )
    if servers:
        servers.unlink()
        counts["ir_mail_server"] = len(servers)
    env.invalidate_all()
    if not quiet or counts:
        print(
            "    deleted: " + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing")
        )
    return counts


# ----------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------


def fmt_rate(count, seconds):
    return f"{count / seconds:,.0f}" if seconds > 0 else "n/a"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database where mkt_campaign is installed")
    parser.add_argument("-c", "--config", required=True, help="Odoo configuration file")
    parser.add_argument("--contacts", type=int, default=10000, help="number of contacts (N)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="mkt_campaign.batch_size for this run (default: as configured)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600,
        help="give up a sending phase after this many seconds",
    )
    parser.add_argument("--log-level", default="warn", help="Odoo log level (default warn)")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not ANALYZE res_partner after generating the contacts "
        "(enrolment then runs on stale planner statistics)",
    )
    parser.add_argument(
        "--phases",
        default="enrol,campaign,ceiling,plain",
        help="comma-separated phases to run among enrol, list, campaign, "
        "ceiling, plain "
        "(default: all); e.g. 'enrol' to measure enrolment on a large N",
    )
    parser.add_argument(
        "--plain-seconds",
        type=float,
        metavar="S",
        help="measure the plain mailing for about S seconds only, on the "
        "same audience: slices of --plain-slice recipients are generated "
        "(action_send_mail(res_ids=...)) and sent (process_email_queue()) "
        "until S seconds have passed; its rate is that of the part sent "
        "(for large N: at ~27 mails/s, 100k would take an hour)",
    )
    parser.add_argument(
        "--plain-slice",
        type=int,
        default=1000,
        metavar="K",
        help="recipients per slice with --plain-seconds (default 1000)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="profile phases 2 and 3 with cProfile: DIR/campaign.prof, "
        "DIR/plain.prof, and print their top functions",
    )
    args = parser.parse_args(argv)
    n = args.contacts

    sink = Sink(sample_every=max(1, n // 500))  # before any database connection
    print(f"loopback SMTP sink on 127.0.0.1:{sink.port} (pid {sink.process.pid})")

    import warnings

    import odoo
    import odoo.modules.module
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        ["-c", args.config, "-d", args.db, f"--log-level={args.log_level}"],
        setup_logging=True,
    )
    # after Odoo set its warning filters up: its own deprecation warnings
    # (e.g. _notify_progress in the composer) are not the benchmark's business
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # outside tests: the cron methods commit between batches, SMTP is enabled
    odoo.modules.module.current_test = False
    registry = Registry(args.db)
    results = {}
    peaks = PhasePeak()
    load_start = os.getloadavg()

    try:
        with registry.cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            if "mkt.campaign" not in env:
                sys.exit(f"mkt_campaign is not installed in {args.db}")
            if env["ir.mail_server"]._disable_send():
                sys.exit("e-mail sending is disabled in this process")
            print(
                f"database {args.db}, {n:,} contacts, Odoo {odoo.release.version}, "
                f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}"
            )
            cleanup(env, quiet=True)
            cr.commit()
            Params = env["ir.config_parameter"].sudo()
            old_batch = Params.get_param("mkt_campaign.batch_size")
            if args.batch_size:
                Params.set_param("mkt_campaign.batch_size", args.batch_size)
            batch_size = int(Params.get_param("mkt_campaign.batch_size", 500)) or 500
            cr.commit()
            try:
                run(env, args, n, sink, results, peaks, batch_size)
            finally:
                cr.rollback()
                if args.batch_size:
                    Params.set_param("mkt_campaign.batch_size", old_batch or 500)
                if args.keep:
                    print(
                        "--keep: generated data left in place "
                        "(the next run deletes it before starting)"
                    )
                    # the sink goes away with this script: don't leave a server
                    # on a dead port (it is deleted by the next run)
                    server = env["ir.mail_server"].search(
                        [("name", "=", "mkt_campaign bench sink")]
                    )
                    env["mailing.mailing"].with_context(active_test=False).search(
                        [("mail_server_id", "in", server.ids)]
                    ).mail_server_id = False
                    server.active = False
                else:
                    print("cleaning up")
                    cleanup(env)
                cr.commit()
    finally:
        sink.stop()
    load_end = os.getloadavg()
    summary(results, n, peaks, load_start, load_end, batch_size)


def run(env, args, n, sink, results, peaks, batch_size):
    cr = env.cr

    # ---- 0. data ------------------------------------------------------
    peaks.start()
    t0 = time.perf_counter()
    inserted = generate_contacts(env, n)
    cr.commit()
    t_gen = time.perf_counter() - t0
    if not args.no_analyze:
        # fresh planner statistics, as autovacuum would have them a minute
        # later: right after a bulk insert they still describe the old table
        cr.execute("ANALYZE res_partner")
        cr.commit()
    server = env["ir.mail_server"].create(
        {
            "name": "mkt_campaign bench sink",
            "smtp_host": "127.0.0.1",
            "smtp_port": sink.port,
            "smtp_encryption": "none",
            "smtp_authentication": "login",
            "sequence": 0,
        }
    )
    cr.commit()
    results["generate"] = {"seconds": t_gen, "count": inserted, "peak": peaks.stop()}
    print(f"[0] generated {inserted:,} contacts in {t_gen:.2f} s ({fmt_rate(inserted, t_gen)}/s)")

    # ---- 1. enrolment -------------------------------------------------
    domain = repr([("email", "=like", EMAIL_LIKE)])
    campaign = env["mkt.campaign"].create(
        {
            "name": f"Bench campaign {n}",
            "model_id": env["ir.model"]._get_id("res.partner"),
            "domain": domain,
            "unique_field_id": env["ir.model.fields"]._get("res.partner", "email").id,
        }
    )
    activity = env["mkt.activity"].create(
        {
            "name": "Bench e-mail",
            "campaign_id": campaign.id,
            "activity_type": "email",
            "trigger_type": "begin",
            "subject": SUBJECT,
            "body_html": BODY,
        }
    )
    # an explicit sender and server, the same for the plain mailing below
    activity.mailing_id.write({"email_from": SENDER, "mail_server_id": server.id})
    cr.commit()
    peaks.start()
    q0 = cr.sql_log_count
    t0 = time.perf_counter()
    campaign.action_start()
    env.flush_all()
    t_enrol = time.perf_counter() - t0
    cr.commit()
    t_enrol_commit = time.perf_counter() - t0
    queries = cr.sql_log_count - q0
    cr.execute("SELECT count(*) FROM mkt_participant WHERE campaign_id = %s", [campaign.id])
    participants = cr.fetchone()[0]
    cr.execute(
        "SELECT count(*) FROM mkt_trace WHERE campaign_id = %s AND state = 'scheduled'",
        [campaign.id],
    )
    queued = cr.fetchone()[0]
    results["enrol"] = {
        "seconds": t_enrol,
        "count": participants,
        "queries": queries,
        "peak": peaks.stop(),
        "queued": queued,
    }
    print(
        f"[1] enrolment: action_start() enrolled {participants:,} records and queued "
        f"{queued:,} steps in {t_enrol:.3f} s ({t_enrol_commit:.3f} s with the commit) -> "
        f"{fmt_rate(participants, t_enrol)} records/s (target >= 50,000/s), {queries} queries"
    )
    if participants != n or queued != n:
        print(f"    !! expected {n} participants and steps")

    phases = {p.strip() for p in args.phases.split(",")}
    if "list" in phases:
        # ---- 1b. audience saved as a mailing list ---------------------------
        peaks.start()
        q0 = cr.sql_log_count
        t0 = time.perf_counter()
        mailing_list = campaign._save_mailing_list(name=f"Bench list {n}")
        env.flush_all()
        t_list = time.perf_counter() - t0
        cr.commit()
        queries = cr.sql_log_count - q0
        cr.execute(
            "SELECT count(*) FROM mailing_subscription WHERE list_id = %s", [mailing_list.id]
        )
        subscribed = cr.fetchone()[0]
        results["list"] = {
            "seconds": t_list,
            "count": subscribed,
            "queries": queries,
            "peak": peaks.stop(),
        }
        print(
            f"[1b] Save as Mailing List: {subscribed:,} contacts subscribed in "
            f"{t_list:.3f} s -> {fmt_rate(subscribed, t_list)} contacts/s, {queries} queries"
        )
        if subscribed != n:
            print(f"    !! expected {n} contacts")
    if "campaign" not in phases:
        return
    # ---- 2. campaign e-mail step --------------------------------------
    Trace = env["mkt.trace"]
    base = sink.count()
    profiler = start_profile(args)
    peaks.start()
    q0 = cr.sql_log_count
    t0 = time.perf_counter()
    calls, received = send_until_done(
        Trace._cron_execute_activities,
        cr,
        sink,
        base + n,
        t0 + args.timeout,
        "SELECT count(*) FROM mkt_trace WHERE campaign_id = %s "
        "AND state IN ('scheduled', 'processing')",
        campaign.id,
    )
    received -= base
    t_campaign = time.perf_counter() - t0
    queries = cr.sql_log_count - q0
    stop_profile(profiler, args, "campaign")
    cr.commit()
    cr.execute(
        "SELECT state, count(*) FROM mkt_trace WHERE campaign_id = %s GROUP BY state", [campaign.id]
    )
    states = dict(cr.fetchall())
    cr.execute(
        """SELECT trace_status, count(*) FROM mailing_trace
                   WHERE mass_mailing_id = %s GROUP BY trace_status""",
        [activity.mailing_id.id],
    )
    mstates = dict(cr.fetchall())
    check = sink.ask("stats")
    results["campaign"] = {
        "seconds": t_campaign,
        "count": received,
        "queries": queries,
        "peak": peaks.stop(),
        "check": check,
        "states": states,
        "calls": calls,
    }
    print(
        f"[2] campaign e-mail step: {received:,} mails received by the sink in "
        f"{t_campaign:.2f} s -> {fmt_rate(received, t_campaign)} mails/s "
        f"({calls} cron call(s), batch size {batch_size}, "
        f"{queries / max(received, 1):.1f} SQL queries per mail, "
        f"{check['connections']} SMTP connections so far)"
    )
    print(f"    mkt.trace states {states}; mailing.trace {mstates}")
    print_check(check, n)

    if "ceiling" in phases:
        run_ceiling(env, activity, server, sink, n, results, peaks)

    if "plain" not in phases:
        return
    # ---- 3. plain mailing -----------------------------------------------
    mailing = env["mailing.mailing"].create(
        {
            "subject": SUBJECT,
            "body_html": BODY,
            "body_arch": BODY,
            "mailing_type": "mail",
            "mailing_model_id": env["ir.model"]._get_id("res.partner"),
            "mailing_domain": domain,
            "email_from": SENDER,
            "mail_server_id": server.id,
        }
    )
    cr.commit()
    base = sink.count()
    profiler = start_profile(args)
    peaks.start()
    q0 = cr.sql_log_count
    t0 = time.perf_counter()
    Mail = env["mail.mail"].with_context(filters=[("mailing_id", "=", mailing.id)])
    pending_query = "SELECT count(*) FROM mail_mail WHERE mailing_id = %s AND state = 'outgoing'"
    target = n
    if args.plain_seconds:
        # a bounded time slice: the same audience, slice after slice (each
        # generated by the composer, then sent by the mail queue) until the
        # time is up; the rate is the one of the recipients sent
        cr.execute("SELECT id FROM res_partner WHERE email LIKE %s ORDER BY id", [EMAIL_LIKE])
        audience = [row[0] for row in cr.fetchall()]
        t_generate, drains, target = 0.0, 0, 0
        while target < len(audience) and time.perf_counter() - t0 < args.plain_seconds:
            ids = audience[target : target + args.plain_slice]
            g0 = time.perf_counter()
            mailing.action_send_mail(res_ids=ids)
            cr.commit()
            t_generate += time.perf_counter() - g0
            target += len(ids)
            calls, _received = send_until_done(
                Mail.process_email_queue,
                cr,
                sink,
                base + target,
                t0 + args.timeout,
                pending_query,
                mailing.id,
            )
            drains += calls
        received = sink.wait_for(base + target, 10)
        q_generate = None
    else:
        mailing.action_send_mail()
        t_generate = time.perf_counter() - t0
        q_generate = cr.sql_log_count - q0
        drains, received = send_until_done(
            Mail.process_email_queue,
            cr,
            sink,
            base + n,
            t0 + args.timeout,
            pending_query,
            mailing.id,
        )
    received -= base
    t_plain = time.perf_counter() - t0
    queries = cr.sql_log_count - q0
    stop_profile(profiler, args, "plain")
    cr.execute(
        """SELECT trace_status, count(*) FROM mailing_trace
                   WHERE mass_mailing_id = %s GROUP BY trace_status""",
        [mailing.id],
    )
    mstates = dict(cr.fetchall())
    check = sink.ask("stats")
    results["plain"] = {
        "seconds": t_plain,
        "count": received,
        "queries": queries,
        "peak": peaks.stop(),
        "check": check,
        "generate": t_generate,
        "q_generate": q_generate,
        "drains": drains,
        "sliced": bool(args.plain_seconds),
    }
    print(
        f"[3] plain mailing: {received:,} mails received by the sink in {t_plain:.2f} s -> "
        f"{fmt_rate(received, t_plain)} mails/s (action_send_mail {t_generate:.2f} s, "
        f"queue {t_plain - t_generate:.2f} s in {drains} process_email_queue() call(s); "
        f"the mail queue cron's cadence is not counted; "
        f"{queries / max(received, 1):.1f} SQL queries per mail)"
    )
    print(f"    mailing.trace {mstates}")
    if args.plain_seconds:
        print(
            f"    TIME SLICE (--plain-seconds {args.plain_seconds:g}): the plain mailing "
            f"sent {received:,} of the {n:,} recipients (slices of {args.plain_slice:,}); "
            f"its rate is measured on those, the ratio below compares rates"
        )
    print_check(check, target)

    # ---- 4. ratio ---------------------------------------------------------
    c, p = results["campaign"], results["plain"]
    if c["seconds"] and p["seconds"] and c["count"] and p["count"]:
        ratio = (c["count"] / c["seconds"]) / (p["count"] / p["seconds"])
        results["ratio"] = ratio
        print(
            f"[4] campaign / plain throughput: {ratio:.2f}x "
            f"({'campaign faster' if ratio >= 1 else 'campaign SLOWER'})"
        )


def run_ceiling(env, activity, server, sink, n, results, peaks):
    """The ceiling of the campaign e-mail step: the same messages rendered
    (``_mkt_fast_values``, by chunks of mkt_campaign.send_chunk_size), built
    (``_mkt_fast_build``) and pushed over ONE SMTP session, with no database
    write kept (each chunk's rows are rolled back to a savepoint): no queue,
    no mailing.trace, no commit."""
    from odoo.tools import split_every

    from odoo.addons.mkt_campaign.tools.mail_batch import SmtpBatch

    cr = env.cr
    cr.execute("SELECT id FROM res_partner WHERE email LIKE %s ORDER BY id", [EMAIL_LIKE])
    res_ids = [row[0] for row in cr.fetchall()]
    params = env["ir.config_parameter"].sudo()
    chunk = int(params.get_param("mkt_campaign.send_chunk_size", 50)) or 50
    mailing = (
        activity.mailing_id.sudo()
        .with_context(mkt_campaign_send=True)
        ._mkt_mailing_in_user_context()
    )
    batch = SmtpBatch(server, env)
    base = sink.count()
    peaks.start()
    t0 = time.perf_counter()
    sent = 0
    try:
        for ids in split_every(chunk, res_ids, list):
            # each chunk's rows (composer, excluded recipients' traces) are
            # rolled back at once: the transaction does not grow chunk by chunk
            savepoint = cr.savepoint()
            try:
                values_all = mailing._mkt_fast_values(ids)
                messages = [
                    (res_id, mailing._mkt_fast_build(res_id, values, 0, 0))
                    for res_id, values in values_all.items()
                ]
            finally:
                savepoint.close(rollback=True)
            outcome = batch.send(messages, keep_open=True)
            sent += sum(1 for state, _reason in outcome.values() if state == "sent")
    finally:
        batch.close()
    received = sink.wait_for(base + n, 10) - base
    t_ceiling = time.perf_counter() - t0
    cr.rollback()
    check = sink.ask("stats")
    results["ceiling"] = {
        "seconds": t_ceiling,
        "count": received,
        "peak": peaks.stop(),
        "check": check,
    }
    print(
        f"[2b] ceiling (render + build + one SMTP session, no database write): "
        f"{received:,} mails in {t_ceiling:.2f} s -> {fmt_rate(received, t_ceiling)} mails/s "
        f"({sent:,} accepted)"
    )
    c = results.get("campaign")
    if c and c["seconds"] and received:
        share = (c["count"] / c["seconds"]) / (received / t_ceiling)
        results["ceiling_share"] = share
        print(f"    campaign e-mail step at {share:.0%} of the ceiling")
    print_check(check, n)


def send_until_done(step, cr, sink, target, deadline, pending_query, record_id):
    """Call ``step`` until the query finds nothing pending and the sink has
    ``target`` messages (or the deadline passes); return (calls, sink count)."""
    calls = 0
    while True:
        step()
        calls += 1
        cr.commit()
        cr.execute(pending_query, [record_id])
        pending = cr.fetchone()[0]
        received = sink.count()
        if (not pending and received >= target) or time.perf_counter() > deadline:
            return calls, received
        if not pending:
            # everything was handed to SMTP: the last replies may still travel
            return calls, sink.wait_for(target, 5)


def start_profile(args):
    if not args.profile:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def stop_profile(profiler, args, name):
    if not profiler:
        return
    import pstats

    profiler.disable()
    os.makedirs(args.profile, exist_ok=True)
    path = os.path.join(args.profile, f"{name}.prof")
    profiler.dump_stats(path)
    print(f"    profile: {path} (top functions by cumulative time)")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)


def print_check(check, n):
    problems = {
        k: check[k]
        for k in ("duplicates", "bad_recipients", "bad_subject", "bad_body", "bad_content")
        if check[k]
    }
    print(
        f"    sink check: {check['messages']:,} messages, {check['distinct']:,} distinct "
        f"contacts, {check['parsed']} fully parsed; "
        + ("OK" if not problems and check["distinct"] == n else f"PROBLEMS {problems}")
    )
    for example in check["examples"]:
        print(f"      e.g. {example}")


def summary(results, n, peaks, load_start, load_end, batch_size):
    rows = [("phase", "items", "seconds", "rate", "queries/item", "peak RSS MB")]

    def row(label, key, unit):
        r = results.get(key)
        if not r:
            return
        q = r.get("queries")
        rows.append(
            (
                label,
                f"{r['count']:,}",
                f"{r['seconds']:.2f}",
                f"{fmt_rate(r['count'], r['seconds'])} {unit}/s",
                f"{q / max(r['count'], 1):.2f}" if q is not None else "-",
                f"{r['peak']:.0f}" if r.get("peak") else "-",
            )
        )

    row("generate contacts (SQL)", "generate", "contacts")
    row("1. enrolment action_start()", "enrol", "records")
    row("1b. Save as Mailing List", "list", "contacts")
    row("2. campaign e-mail step", "campaign", "mails")
    row("2b. ceiling (no DB write)", "ceiling", "mails")
    row(
        "3. plain mailing + queue"
        + (" (time slice)" if results.get("plain", {}).get("sliced") else ""),
        "plain",
        "mails",
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    print(f"SUMMARY ({n:,} contacts, campaign batch size {batch_size})")
    for i, r in enumerate(rows):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w)
                for j, (c, w) in enumerate(zip(r, widths, strict=False))
            )
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    if "ratio" in results:
        print(f"  campaign / plain throughput ratio: {results['ratio']:.2f}x")
    if "ceiling_share" in results:
        print(f"  campaign e-mail step / ceiling: {results['ceiling_share']:.0%}")
    print(f"  peak RSS of the whole run (ru_maxrss): {max(peaks.overall, maxrss_mb()):.0f} MB")
    print(
        f"  load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} "
        f"({os.cpu_count()} CPUs; other processes share them)"
    )


if __name__ == "__main__":
    main()
