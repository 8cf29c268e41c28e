"""Queue rows whose message may have been delivered (interrupted while
sending, or whose result could not be recorded) are now marked
``mkt_trace.is_uncertain``: Rebuild Queue no longer requeues them unless asked
to explicitly. Mark the ones failed by an earlier version: failed, not a test,
their sending started, and their reason exactly the text the engine wrote
then, in English or in one of the active languages.

A row failed by an error raised after the first message of its chunk left
("The step could not run: ...") cannot be told from an ordinary failure by its
text: such rows are left as they are (requeued by Rebuild Queue as before)."""

from odoo.tools.translate import code_translations

# the reasons as versions up to 19.0.1.3.0 wrote them (models/mkt_trace.py)
UNCERTAIN_REASONS = [
    "Interrupted while sending: the worker stopped before recording the result. "
    "It is not retried automatically so that nobody receives the message twice; "
    "use Retry once you checked it was not delivered.",
    "The result could not be recorded (%(error)s). It is not retried "
    "automatically so that nobody receives the message twice; use Retry "
    "once you checked it was not delivered.",
]


def _like_pattern(text):
    """A LIKE pattern matching ``text`` with any value for its placeholder."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("\\%(error)s", "%")


def uncertain_patterns(cr):
    cr.execute("SELECT code FROM res_lang WHERE active")
    langs = [code for (code,) in cr.fetchall()]
    texts = set(UNCERTAIN_REASONS)
    for lang in langs:
        translations = code_translations.get_python_translations("mkt_campaign", lang)
        texts.update(translations[text] for text in UNCERTAIN_REASONS if text in translations)
    return sorted(_like_pattern(text) for text in texts)


def migrate(cr, version):
    cr.execute(
        """
        UPDATE mkt_trace SET is_uncertain = true
         WHERE state = 'failed' AND send_started AND is_test IS NOT TRUE
           AND is_uncertain IS NOT TRUE AND error_message LIKE ANY(%s)
        """,
        [uncertain_patterns(cr)],
    )
