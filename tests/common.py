import re
from contextlib import ExitStack, nullcontext
from datetime import datetime

from odoo.tests import freeze_time

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.mass_mailing.tests.common import MassMailCommon

from .loopback_sms import LoopbackSmsServer, patch_iap
from .loopback_smtp import LoopbackSMTPServer

# a fixed clock for the tests that move time: delays are computed from it
T0 = datetime(2026, 3, 2, 9, 0, 0)

EMAIL_BODY = (
    '<p>Hello <t t-out="object.name"/>, our spring sale starts today.</p>'
    '<p><a href="https://www.example.com/spring-sale">Shop now</a></p>'
)
EMAIL_SUBJECT = "Spring sale for {{ object.name }}"
SMS_BODY = "Spring sale for {{ object.name }}: 20% off today"


class MktCampaignCommon(MassMailCommon):
    """Users per role, a tagged audience of contacts and helpers to build a
    campaign workflow, run the queue and simulate tracking events."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # these tests read the mail.mail rows of the composer path (kept for
        # attachments, archives, thread replies); the batch-native path has
        # its own tests (test_fast_email.py, test_email_e2e.py)
        cls.env["ir.config_parameter"].sudo().set_param("mkt_campaign.fast_email", "0")
        # SMS go to a loopback SMS gateway speaking IAP's API (Odoo's 'sms.endpoint')
        cls.sms_gateway = LoopbackSmsServer().start()
        cls.addClassCleanup(cls.sms_gateway.stop)
        cls.env["ir.config_parameter"].sudo().set_param("sms.endpoint", cls.sms_gateway.endpoint)
        cls.startClassPatcher(patch_iap(cls.sms_gateway))
        cls.user_mkt_user = mail_new_test_user(
            cls.env,
            login="mkt_user",
            name="Ursula Campaign User",
            email="ursula.user@example.com",
            groups="base.group_user,mkt_campaign.group_mkt_campaign_user",
        )
        cls.user_mkt_manager = mail_new_test_user(
            cls.env,
            login="mkt_manager",
            name="Manfred Campaign Manager",
            email="manfred.manager@example.com",
            groups="base.group_user,mkt_campaign.group_mkt_campaign_manager",
        )
        cls.user_internal = mail_new_test_user(
            cls.env,
            login="mkt_internal",
            name="Irene Internal",
            email="irene.internal@example.com",
            groups="base.group_user",
        )
        # every audience of these tests is this tag: the database holds other contacts
        cls.tag = cls.env["res.partner.category"].create({"name": "Spring audience"})
        cls.other_tag = cls.env["res.partner.category"].create({"name": "VIP"})
        cls.partners = cls.env["res.partner"].create(
            [
                {"name": "Alice Audience", "email": "alice@example.com", "phone": "+32470000001"},
                {"name": "Bob Buyer", "email": "bob@example.com", "phone": "+32470000002"},
                # same address as Alice, other case: a duplicate for an e-mail dedup
                {"name": "Alice Again", "email": "ALICE@Example.com", "phone": "+32470000003"},
                {"name": "Carol Customer", "email": "carol@example.com", "phone": "+32470000004"},
                {"name": "Dan No-Mail", "email": False, "phone": "+32470000005"},
            ]
        )
        cls.partners.category_id = cls.tag
        cls.alice, cls.bob, cls.alice_dup, cls.carol, cls.dan = cls.partners
        cls.outsider = cls.env["res.partner"].create(
            {"name": "Oscar Outsider", "email": "oscar@example.com"}
        )
        cls.partner_model = cls.env["ir.model"]._get("res.partner")
        cls.audience_domain = repr([("category_id", "in", cls.tag.ids)])

    def setUp(self):
        super().setUp()
        self.sms_gateway.reset()

    # ------------------------------------------------------------------
    # Builders
    # ------------------------------------------------------------------

    @classmethod
    def _create_campaign(cls, steps=(), **values):
        """A campaign on the tagged contacts. ``steps`` are (key, values)
        pairs given to ``_add_step``; values may name a parent by its key.
        Returns the campaign and a dict key -> activity."""
        campaign = cls.env["mkt.campaign"].create(
            {
                "name": "Spring Sale",
                "model_id": cls.partner_model.id,
                "domain": cls.audience_domain,
                **values,
            }
        )
        activities = {}
        for key, step_values in steps:
            step_values = dict(step_values)
            if isinstance(step_values.get("parent"), str):
                step_values["parent"] = activities[step_values["parent"]]
            activities[key] = cls._add_step(campaign, name=key, **step_values)
        return campaign, activities

    @classmethod
    def _add_step(
        cls, campaign, name="Step", activity_type="email", trigger_type=None, parent=None, **values
    ):
        vals = {
            "campaign_id": campaign.id,
            "name": name,
            "activity_type": activity_type,
            "trigger_type": trigger_type or ("after_parent" if parent else "begin"),
            "parent_id": parent.id if parent else False,
            "interval_number": 0,
            "interval_type": "hours",
        }
        if activity_type == "email":
            vals.update(subject=EMAIL_SUBJECT, body_html=EMAIL_BODY)
        elif activity_type == "sms":
            vals.update(body_plaintext=SMS_BODY)
        elif activity_type == "server_action" and "server_action_id" not in values:
            vals["server_action_id"] = cls._tagging_action().id
        vals.update(values)
        return cls.env["mkt.activity"].create(vals)

    @classmethod
    def _new_contact(cls, name="Nina Newcomer", email="nina@example.com", **values):
        """A contact that joins the audience (the campaign's tag)."""
        return cls.env["res.partner"].create(
            {"name": name, "email": email, "category_id": cls.tag.ids, **values}
        )

    @classmethod
    def _tagging_action(cls, tag=None):
        """A code server action that tags the partners it runs on."""
        tag = tag or cls.other_tag
        return cls.env["ir.actions.server"].create(
            {
                "name": f"Tag as {tag.name}",
                "model_id": cls.partner_model.id,
                "state": "code",
                "code": f"records.write({{'category_id': [(4, {tag.id})]}})",
            }
        )

    # ------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------

    def _launch(self, campaign, when=T0):
        with freeze_time(when):
            campaign.action_start()
        self.env.invalidate_all()

    def _run_queue(self, when=None):
        """One run of the execution cron at ``when`` (Datetime.now is what the
        queue compares with), e-mails going through the mocked mail gateway."""
        with ExitStack() as stack:
            if when:
                stack.enter_context(freeze_time(when))
            stack.enter_context(self.mock_mail_gateway())
            self.env["mkt.trace"].sudo()._cron_execute_activities()
        self.env.invalidate_all()

    def _run_sync(self, when=None):
        with freeze_time(when) if when else nullcontext():
            self.env["mkt.campaign"].sudo()._cron_sync_participants()
        self.env.invalidate_all()

    def _event(self, activity, partner, event, when=None):
        """The recipient ``partner`` opens / clicks / replies to / bounces the
        message of step ``activity``, as Email/SMS Marketing records it."""
        mtrace = self._mailing_trace(self._traces(activity, partner))
        setter = {
            "open": mtrace.set_opened,
            "click": mtrace.set_clicked,
            "reply": mtrace.set_replied,
            "bounce": mtrace.set_bounced,
        }[event]
        with freeze_time(when) if when else nullcontext():
            setter()
        self.env.invalidate_all()
        return mtrace

    def _click_link(self, activity, partner):
        """``partner`` clicks the (shortened, tracked) link of the e-mail that
        step ``activity`` sent in the last queue run: the click is recorded
        by the link tracker, as the /r/ controller does."""
        mtrace = self._mailing_trace(self._traces(activity, partner))
        sent = [m for m in self._mails if any(partner.email in to for to in m["email_to"])]
        self.assertEqual(len(sent), 1, f"one e-mail was sent to {partner.name}")
        match = re.search(r"/r/(\w+)/m/(\d+)", sent[0]["body"])
        self.assertTrue(match, "the e-mail's link is shortened and tracked")
        code, trace_id = match.group(1), int(match.group(2))
        self.assertEqual(trace_id, mtrace.id)
        self.env["link.tracker.click"].sudo().add_click(
            code, ip="100.64.0.1", country_code="BE", mailing_trace_id=trace_id
        )
        self.env.invalidate_all()
        return mtrace

    # ------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------

    def _traces(self, activity, partner=None, **filters):
        traces = activity.trace_ids
        if partner is not None:
            traces = traces.filtered(lambda t: t.res_id in partner.ids)
        for fname, value in filters.items():
            traces = traces.filtered(lambda t, f=fname, v=value: t[f] == v)
        return traces

    def _trace_states(self, activity):
        """{partner: state} of an activity's queue rows."""
        Partner = self.env["res.partner"]
        return {Partner.browse(t.res_id): t.state for t in activity.trace_ids}

    def _mailing_trace(self, trace):
        """The Email/SMS Marketing trace of a processed campaign step."""
        self.assertEqual(
            len(trace.mailing_trace_ids),
            1,
            f"step {trace.activity_id.name} of {trace.record_name} has one message trace",
        )
        return trace.mailing_trace_ids

    def assertTraceStates(self, activity, expected):
        """``expected``: {partner: state}; every row of the activity is listed."""
        self.assertEqual(
            {p.name: s for p, s in self._trace_states(activity).items()},
            {p.name: s for p, s in expected.items()},
            f"queue of step {activity.name}",
        )


class SmtpSinkMixin:
    """A loopback SMTP sink (tests/loopback_smtp.py) for the test class, and
    the campaign settings of the sending tests: messages really go over SMTP,
    to 127.0.0.1 only."""

    @classmethod
    def _start_smtp_sink(cls, server_name=None, sender=None):
        cls.sink = LoopbackSMTPServer(host="127.0.0.1", port=0)
        cls.sink.start()
        cls.addClassCleanup(cls.sink.stop)
        if not server_name:
            return
        # the sink is the only way out: the steps' mailings are bound to this
        # server, so neither another ir.mail_server nor the configuration's
        # smtp_server can be picked
        cls.mail_server = cls.env["ir.mail_server"].create(
            {
                "name": server_name,
                "smtp_host": "127.0.0.1",
                "smtp_port": cls.sink.port,
                "smtp_encryption": "none",
                "sequence": 0,
            }
        )
        # the campaign's sender: the company's address
        cls.env.company.email = sender
        Params = cls.env["ir.config_parameter"].sudo()
        Params.set_param("mkt_campaign.max_attempts", 5)
        Params.set_param("mkt_campaign.retry_delay_minutes", 5)

    def _make_sink_campaign(self, name, prefix, domain_suffix, subject, body_html):
        """A campaign on the contacts whose e-mail starts with ``prefix`` and
        ends with ``domain_suffix``, one e-mail step bound to the sink."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": name,
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "domain": repr([("email", "=like", f"{prefix}%{domain_suffix}")]),
                "unique_field_id": self.env["ir.model.fields"]._get("res.partner", "email").id,
            }
        )
        activity = self.env["mkt.activity"].create(
            {
                "name": "Welcome",
                "campaign_id": campaign.id,
                "activity_type": "email",
                "trigger_type": "begin",
                "subject": subject,
                "body_html": body_html,
            }
        )
        activity.mailing_id.mail_server_id = self.mail_server
        return campaign, activity

    def _run_cron(self):
        self.env["mkt.trace"]._cron_execute_activities()
        self.env.flush_all()
        self.env.invalidate_all()
