import logging

import psycopg2.extensions

from odoo import api, fields, models
from odoo.tools import SQL

from .engine_fields import EngineMany2one

_logger = logging.getLogger(__name__)


class MktParticipant(models.Model):
    _name = "mkt.participant"
    _description = "Marketing Campaign Participant"
    _order = "id desc"
    _rec_name = "record_name"
    # no create/write uid/date: two more triggers per enrolled row
    _log_access = False

    campaign_id = EngineMany2one(
        # indexed by _campaign_res_idx (campaign_id, res_id)
        "mkt.campaign", "Campaign", required=True, ondelete="cascade",
    )
    model_name = fields.Char(related="campaign_id.model_name")
    res_id = fields.Many2oneReference("Record ID", model_field="model_name", required=True)
    record_name = fields.Char("Record", readonly=True)
    email = fields.Char(readonly=True)
    phone = fields.Char(readonly=True)
    unique_key = fields.Char(
        readonly=True, help="Value of the campaign's unique field when enrolled."
    )
    state = fields.Selection(
        [("running", "Running"), ("completed", "Completed"), ("canceled", "Canceled")],
        default="running", required=True,
    )
    enrolled_date = fields.Datetime(
        "Enrolled On", readonly=True, default=fields.Datetime.now,
    )
    end_date = fields.Datetime(
        "Left On", readonly=True, help="When the participant completed or left the campaign."
    )
    is_test = fields.Boolean("Test", readonly=True)
    trace_ids = fields.One2many("mkt.trace", "participant_id", "Steps")

    _campaign_res_idx = models.Index("(campaign_id, res_id)")
    _unique_key_running = models.UniqueIndex(
        "(campaign_id, is_test, unique_key) WHERE state = 'running'",
        "A record is enrolled once in a campaign while it takes part in it.",
    )

    @api.depends("record_name", "res_id")
    def _compute_display_name(self):
        for participant in self:
            participant.display_name = participant.record_name or (
                f"{participant.model_name},{participant.res_id}"
            )

    def unlink(self):
        ids = self.ids
        res = super().unlink()
        # queue rows have no foreign key (engine_fields.py)
        self.env["mkt.trace"]._unlink_queue("participant_id", ids)
        return res

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.model_name,
            "res_id": self.res_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_exclude(self):
        """Take participants out of their campaign for good: their pending steps
        are canceled and re-synchronisations never enrol the record again."""
        self.campaign_id._check_can_run()
        participants = self.sudo()
        Refinement = self.env["mkt.campaign.refinement"].sudo()
        existing = {(r.campaign_id.id, r.res_id): r for r in Refinement.search(
            [("campaign_id", "in", participants.campaign_id.ids),
             ("res_id", "in", participants.mapped("res_id"))]
        )}
        to_create = []
        for participant in participants:
            line = existing.get((participant.campaign_id.id, participant.res_id))
            if line:
                line.kind = "exclude"
            elif (participant.campaign_id.id, participant.res_id) not in {
                (v["campaign_id"], v["res_id"]) for v in to_create
            }:
                to_create.append({
                    "campaign_id": participant.campaign_id.id, "res_id": participant.res_id,
                    "kind": "exclude", "record_name": participant.record_name,
                })
        Refinement.create(to_create)
        participants.trace_ids.filtered(lambda t: t.state == "scheduled")._set_state(
            "canceled", self.env._("Excluded from the campaign by %(user)s.", user=self.env.user.name)
        )
        participants.filtered(lambda p: p.state == "running").write(
            {"state": "canceled", "end_date": fields.Datetime.now()}
        )
        return True

    def _update_completion(self):
        """Participants with no step left to run are completed; one query."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(SQL(
            """
            UPDATE mkt_participant p SET state = 'completed', end_date = %s
             WHERE p.id = ANY(%s) AND p.state = 'running'
               AND NOT EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id
                                  AND t.state IN ('scheduled', 'processing'))
            """,
            fields.Datetime.now(), self.ids,
        ))
        self.invalidate_recordset(["state", "end_date"])

    def _after_steps(self, retry=False):
        """Complete the participants whose last steps just ran. With
        ``retry`` this is its own transaction after the steps' one: a
        conflict with another worker updating the same participants (two
        steps of one person in two batches) is retried on a fresh snapshot
        and never touches the steps' outcome, already committed."""
        for _attempt in range(3 if retry else 1):
            try:
                self._update_completion()
                if retry:
                    # its own transaction (see above), only in the queue's
                    # auto-commit mode
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                return
            except psycopg2.extensions.TransactionRollbackError:
                if not retry:
                    raise
                self.env.cr.rollback()
                self.env.invalidate_all()
        _logger.warning(
            "mkt_campaign: completion of %d participants left to their next step", len(self)
        )

    def _reopen(self):
        """Completed participants with a step to run again are running again,
        except a past participation of a record that entered the campaign
        again since (re-entry): a record runs once at a time. One query."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(SQL(
            """
            UPDATE mkt_participant p SET state = 'running'
             WHERE p.id = ANY(%s) AND p.state = 'completed'
               AND NOT EXISTS (SELECT 1 FROM mkt_participant o
                                WHERE o.campaign_id = p.campaign_id AND o.is_test = p.is_test
                                  AND o.unique_key = p.unique_key AND o.state = 'running')
            """,
            self.ids,
        ))
        self.invalidate_recordset(["state"])
