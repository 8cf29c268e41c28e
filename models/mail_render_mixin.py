from collections.abc import Mapping

from odoo import api, models

# context key the queue sets while a channel renders a chunk of campaign
# messages (mkt_trace_feedback.py, _execute_channel): the participants whose
# payload the messages may read
PAYLOAD_CONTEXT_KEY = "mkt_payload_participant_ids"


class ObjectPayload(Mapping):
    """``object_payload`` of the render context: the payload (JSON object) of
    the campaign participant whose record (``object``) is being rendered.

    The renderers of mail.render.mixin set ``variables['object']`` on one
    dictionary before rendering each record: this mapping reads it at the
    time of each lookup, so one instance serves the whole chunk. The
    payloads are read on first use, with one query and the rendering
    environment's rights (record rules apply to a user's preview; the queue
    renders as the engine). Outside a campaign sending it is empty, so that
    ``{{ object_payload.get('coupon', '') }}`` renders (empty) in checks and
    previews."""

    def __init__(self, env, variables, participant_ids):
        self._env = env
        self._variables = variables
        self._participant_ids = list(participant_ids or ())
        self._by_res_id = None

    def _current(self):
        if self._by_res_id is None:
            self._by_res_id = {}
            if self._participant_ids:
                participants = self._env["mkt.participant"].search_fetch(
                    [("id", "in", self._participant_ids)], ["res_id", "payload"]
                )
                self._by_res_id = {p.res_id: p.payload for p in participants}
        record = self._variables.get("object")
        if not record or len(record) != 1:
            return {}
        payload = self._by_res_id.get(record.id)
        return payload if isinstance(payload, dict) else {}

    def __getitem__(self, key):
        return self._current()[key]

    def __iter__(self):
        return iter(self._current())

    def __len__(self):
        return len(self._current())

    def __repr__(self):
        return repr(self._current())


class MailRenderMixin(models.AbstractModel):
    _inherit = "mail.render.mixin"

    @api.model
    def _render_eval_context(self):
        render_context = super()._render_eval_context()
        render_context["object_payload"] = ObjectPayload(
            self.env, render_context, self.env.context.get(PAYLOAD_CONTEXT_KEY)
        )
        return render_context
