"""Participants and the send queue lost their database foreign keys (see
models/engine_fields.py) and their create/write uid/date columns
(``_log_access = False``: the participant's enrolment date is now
``enrolled_date``), and mkt_trace.participant_id its own index (it leads
mkt_trace_unique_step)."""

FOREIGN_KEYS = [
    ("mkt_participant", "mkt_participant_campaign_id_fkey"),
    ("mkt_trace", "mkt_trace_participant_id_fkey"),
    ("mkt_trace", "mkt_trace_activity_id_fkey"),
    ("mkt_trace", "mkt_trace_campaign_id_fkey"),
    ("mkt_trace", "mkt_trace_parent_id_fkey"),
    ("mkt_participant", "mkt_participant_create_uid_fkey"),
    ("mkt_participant", "mkt_participant_write_uid_fkey"),
    ("mkt_trace", "mkt_trace_create_uid_fkey"),
    ("mkt_trace", "mkt_trace_write_uid_fkey"),
]
LOG_ACCESS_COLUMNS = ["create_uid", "create_date", "write_uid", "write_date"]


def migrate(cr, version):
    cr.execute("UPDATE mkt_participant SET enrolled_date = create_date WHERE enrolled_date IS NULL")
    for table, name in FOREIGN_KEYS:
        cr.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{name}"')
    cr.execute(
        "DELETE FROM ir_model_constraint WHERE name = ANY(%s)",
        [[name for _table, name in FOREIGN_KEYS]],
    )
    cr.execute("DROP INDEX IF EXISTS mkt_trace__participant_id_index")
    for table in ("mkt_participant", "mkt_trace"):
        for column in LOG_ACCESS_COLUMNS:
            cr.execute(f'ALTER TABLE "{table}" DROP COLUMN IF EXISTS "{column}"')
