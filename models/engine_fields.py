from odoo import fields


class EngineMany2one(fields.Many2one):
    """A many2one of the engine's high-volume tables (participants and the
    send queue) that has no database foreign key.

    Enrolment inserts one participant per record and one queue row per
    participant and first step; a foreign key fires one trigger per inserted
    row (3 to 5 µs each), and the five of participant → campaign and queue row
    → participant, step, campaign, parent took more than half of the
    enrolment's time. Those rows are written by the engine only (set-based
    SQL), always for existing campaigns, steps and participants, and the
    ``ondelete='cascade'`` of these fields is carried out by the unlink() of
    campaigns, steps and participants (one DELETE each, see
    ``mkt.trace._unlink_queue``), as mail.thread does for its messages; an
    autovacuum job deletes rows left behind by SQL deletions.
    """

    def update_db_foreign_key(self, model, column):
        return
