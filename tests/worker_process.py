"""One Odoo worker process running the campaign queue, as an Odoo server's
cron worker would: ``python3 worker_process.py CONFIG DATABASE``.

Used by tests/test_workers.py to drain one queue with several real processes
(and to kill one of them). Not a test module: Odoo never imports it. It runs
outside Odoo's test mode, so the queue commits its claims and chunks and
e-mails really leave (to the tests' loopback SMTP sink)."""
# a standalone process: the parent test reads its stdout
# pylint: disable=print-used

import sys

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import config


def main(conf, dbname):
    config.parse_config(["-c", conf, "-d", dbname, "--log-level=warn"])
    registry = Registry(dbname)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["mkt.trace"]._cron_execute_activities()
    print("worker done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
