"""The channel adapter contract (mkt.trace._execute_channel): each channel is
one method called with a chunk of claimed steps of one activity, returning
{trace: (state, reason)}; the queue finds it in the channel registry
(mkt.activity._mkt_channel) and knows nothing else about channels."""

from odoo.fields import Domain
from odoo.tests import freeze_time, tagged

from odoo.addons.mkt_campaign.models.mkt_activity import MktChannel
from odoo.addons.mkt_campaign.models.mkt_trace import CHANNEL_STATES
from odoo.addons.mkt_campaign.tools import fcm_api
from odoo.addons.mkt_campaign.tools.fcm_api import FcmApi

from .common import T0, MktCampaignCommon
from .loopback_fcm import LoopbackFCMServer
from .test_whatsapp import WhatsAppMixin


class ChannelContractMixin:
    def _claimed(self, activity):
        """The due steps of ``activity``, claimed as the queue claims them."""
        with freeze_time(T0):
            traces = self.env["mkt.trace"].sudo()._claim(Domain("activity_id", "=", activity.id))
        self.assertEqual(len(traces), 5, "one step per contact of the audience")
        self.assertEqual(set(traces.mapped("state")), {"processing"})
        return traces

    def _execute(self, activity, traces):
        """Run the step's adapter from the registry on the chunk, as the
        queue does; returns its outcome and whether it marked the sending."""
        channel = activity._mkt_channel()
        self.assertIsInstance(channel, MktChannel)
        progress = {"sending": False}
        outcome = channel.execute(traces.with_context(mkt_send_progress=progress))
        self.assertOutcome(outcome, traces)
        return outcome, progress["sending"]

    def assertOutcome(self, outcome, traces):
        """The documented shape: a dict {trace: (state, reason)} over steps of
        the chunk, state in processed / rejected / failed / retry."""
        self.assertIsInstance(outcome, dict)
        for trace, result in outcome.items():
            self.assertEqual(trace._name, "mkt.trace")
            self.assertEqual(len(trace), 1)
            self.assertIn(trace, traces)
            self.assertIsInstance(result, tuple)
            self.assertEqual(len(result), 2)
            state, reason = result
            self.assertIn(state, CHANNEL_STATES)
            self.assertTrue(reason is False or isinstance(reason, str))

    def _result(self, outcome, traces, partner):
        """What the adapter said about ``partner``'s step (None: processed)."""
        trace = traces.filtered(lambda t: t.res_id == partner.id)
        return outcome.get(trace)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestChannelContract(WhatsAppMixin, ChannelContractMixin, MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_whatsapp()
        cls.fcm = LoopbackFCMServer(project_id="contract-app").start()
        cls.addClassCleanup(cls.fcm.stop)
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("mkt_campaign.fcm_service_account", cls.fcm.service_account())
        params.set_param("mkt_campaign.fcm_endpoint", cls.fcm.endpoint)

    def test_registry(self):
        """Every activity type has its adapter, on the model of its content."""
        template = self._approved_template()
        _campaign, steps = self._create_campaign(
            [
                ("email", {}),
                ("sms", {"activity_type": "sms"}),
                ("whatsapp", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
                ("push", {"activity_type": "push", "push_title": "Hi", "push_body": "Sale"}),
                ("action", {"activity_type": "server_action"}),
            ]
        )
        expected = {
            "email": (steps["email"].mailing_id, True),
            "sms": (steps["sms"].mailing_id, True),
            "whatsapp": (template, True),
            "push": (self.env["mkt.push.token"], True),
            "action": (steps["action"], False),
        }
        for key, (receiver, sends_messages) in expected.items():
            channel = steps[key]._mkt_channel()
            self.assertEqual(channel.execute.__self__, receiver, key)
            self.assertEqual(channel.sends_messages, sends_messages, key)
            self.assertEqual(steps[key]._mkt_sends_messages(), sends_messages, key)

    def test_email_adapter(self):
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        traces = self._claimed(steps["welcome"])
        with self.mock_mail_gateway():
            outcome, marked = self._execute(steps["welcome"], traces)
        self.assertTrue(marked, "the channel marks the moment the mails leave")
        self.assertEqual(self._result(outcome, traces, self.dan)[0], "rejected")
        self.assertIsNone(self._result(outcome, traces, self.alice), "sent: processed")
        self.assertIsNone(self._result(outcome, traces, self.bob))
        sent = [m for m in self._mails if "bob@example.com" in str(m["email_to"])]
        self.assertEqual(len(sent), 1)
        bob = traces.filtered(lambda t: t.res_id == self.bob.id)
        self.assertEqual(len(bob.mailing_trace_ids), 1, "Email Marketing's trace is linked")
        # the adapter leaves states to the queue
        self.assertEqual(set(traces.mapped("state")), {"processing"})

    def test_sms_adapter(self):
        campaign, steps = self._create_campaign([("welcome", {"activity_type": "sms"})])
        self._launch(campaign)
        traces = self._claimed(steps["welcome"])
        outcome, _marked = self._execute(steps["welcome"], traces)
        for partner in (self.alice, self.bob, self.carol, self.dan):
            self.assertIsNone(self._result(outcome, traces, partner), partner.name)
        self.assertEqual(len(traces.mailing_trace_ids), len(traces) - len(outcome))
        self.assertEqual(set(traces.mailing_trace_ids.mapped("trace_type")), {"sms"})

    def test_whatsapp_adapter(self):
        template = self._approved_template()
        self.carol.phone = "not a number"
        self.env["phone.blacklist"].sudo().add("+32470000005")  # Dan
        self.wa.throttle_once.add("+32470000002")  # Bob: 429 once
        campaign, steps = self._create_campaign(
            [
                ("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
            ]
        )
        self._launch(campaign)
        traces = self._claimed(steps["hello"])
        outcome, marked = self._execute(steps["hello"], traces)
        self.assertTrue(marked)
        self.assertEqual(
            self._result(outcome, traces, self.carol),
            ("rejected", "No valid phone number for WhatsApp."),
        )
        self.assertEqual(
            self._result(outcome, traces, self.dan),
            ("rejected", "The phone number is blacklisted."),
        )
        self.assertEqual(self._result(outcome, traces, self.bob)[0], "retry")
        self.assertIsNone(self._result(outcome, traces, self.alice))
        alice = traces.filtered(lambda t: t.res_id == self.alice.id)
        self.assertTrue(alice.whatsapp_message_id.startswith("wamid."))

    def test_push_adapter(self):
        Token = self.env["mkt.push.token"]
        Token.create({"partner_id": self.alice.id, "token": "contract-alice"})
        Token.create({"partner_id": self.bob.id, "token": "contract-bob"})
        Token.create({"partner_id": self.carol.id, "token": "contract-carol"})
        self.fcm.unregistered.add("contract-carol")
        self.fcm.unavailable_once.add("contract-bob")
        campaign, steps = self._create_campaign(
            [
                (
                    "push",
                    {
                        "activity_type": "push",
                        "push_title": "Hi {{ object.name }}",
                        "push_body": "Sale",
                    },
                ),
            ]
        )
        self._launch(campaign)
        traces = self._claimed(steps["push"])
        outcome, marked = self._execute(steps["push"], traces)
        self.assertTrue(marked)
        self.assertIsNone(self._result(outcome, traces, self.alice))
        self.assertEqual(self._result(outcome, traces, self.bob)[0], "retry")
        self.assertEqual(self._result(outcome, traces, self.carol)[0], "rejected")
        self.assertEqual(
            self._result(outcome, traces, self.dan),
            ("rejected", "No push device registered for this contact."),
        )
        self.assertIn(
            {"title": "Hi Alice Audience", "body": "Sale"},
            [m["notification"] for m in self.fcm.messages],
        )

    def test_server_action_adapter(self):
        campaign, steps = self._create_campaign([("tag", {"activity_type": "server_action"})])
        self._launch(campaign)
        traces = self._claimed(steps["tag"])
        outcome, marked = self._execute(steps["tag"], traces)
        self.assertEqual(outcome, {})
        self.assertFalse(marked, "nothing leaves the database")
        self.assertIn(self.other_tag, self.bob.category_id)

        failing = self.env["ir.actions.server"].create(
            {
                "name": "Refuse",
                "model_id": self.partner_model.id,
                "state": "code",
                "code": "raise UserError('The CRM is closed today.')",
            }
        )
        campaign, steps = self._create_campaign(
            [("tag", {"activity_type": "server_action", "server_action_id": failing.id})],
            name="Failing",
        )
        self._launch(campaign)
        traces = self._claimed(steps["tag"])
        outcome, _marked = self._execute(steps["tag"], traces)
        self.assertEqual(set(outcome), set(traces))
        self.assertEqual(set(outcome.values()), {("failed", "The CRM is closed today.")})


class FaxAdapter:
    """A channel of a module the queue never heard of: 'faxes' a contact by
    tagging it. Plain Python; it follows the contract."""

    def __init__(self, tag, no_fax, busy):
        self.tag, self.no_fax, self.busy = tag, no_fax, busy
        self.chunks = []

    def __call__(self, traces):
        self.chunks.append(len(traces))
        traces._mark_sending()
        outcome = {}
        for trace in traces:
            if trace.res_id in self.no_fax.ids:
                outcome[trace] = ("rejected", "No fax number.")
            elif trace.res_id in self.busy.ids:
                outcome[trace] = ("retry", "The line is busy.")
            else:
                self.tag.env["res.partner"].browse(trace.res_id).category_id = [(4, self.tag.id)]
        return outcome


@tagged("post_install", "-at_install", "mkt_campaign")
class TestChannelExtension(MktCampaignCommon):
    """A module adds a channel (selection_add + an override of the registry):
    the queue runs it without knowing it."""

    def _register_fax(self, adapter):
        # what a module's selection_add and _mkt_channel override do, for
        # this test only (restored at cleanup)
        field = self.env["mkt.activity"]._fields["activity_type"]
        self.patch(field, "selection", [*field.selection, ("fax", "Fax")])
        self.patch(field, "_selection", {**field._selection, "fax": "Fax"})
        Activity = type(self.env["mkt.activity"])
        registry = Activity._mkt_channel

        def _mkt_channel(activity):
            if activity.activity_type == "fax":
                return MktChannel(adapter)
            return registry(activity)

        self.patch(Activity, "_mkt_channel", _mkt_channel)

    def test_new_channel(self):
        faxed = self.env["res.partner.category"].create({"name": "Faxed"})
        adapter = FaxAdapter(faxed, no_fax=self.dan, busy=self.bob)
        self._register_fax(adapter)
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.send_chunk_size", 2)
        campaign, steps = self._create_campaign(
            [
                ("fax", {"activity_type": "fax"}),
                ("after", {"parent": "fax", "activity_type": "server_action"}),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertTraceStates(
            steps["fax"],
            {
                self.alice: "processed",
                self.alice_dup: "processed",
                self.carol: "processed",
                self.dan: "rejected",
                self.bob: "scheduled",
            },
        )
        self.assertEqual(
            sorted(adapter.chunks),
            [1, 2, 2],
            "a channel sending messages gets chunks of send_chunk_size",
        )
        self.assertEqual(self._traces(steps["fax"], self.dan).error_message, "No fax number.")
        bob = self._traces(steps["fax"], self.bob)
        self.assertEqual(
            (bob.attempts, bob.error_message), (1, "Attempt 1 failed, retrying: The line is busy.")
        )
        tagged_partners = self.partners.filtered(lambda p: faxed in p.category_id)
        self.assertEqual(tagged_partners, self.alice | self.alice_dup | self.carol)
        # the processed steps' children are queued (and ran: no delay)
        self.assertEqual(
            set(steps["after"].trace_ids.mapped("res_id")),
            {self.alice.id, self.alice_dup.id, self.carol.id},
        )
        self.assertEqual(set(steps["after"].trace_ids.mapped("state")), {"processed"})


@tagged("post_install", "-at_install", "mkt_campaign")
class TestFcmTokenCache(MktCampaignCommon):
    """The FCM OAuth access token is requested once and reused until it
    expires (per process, per service account and endpoint)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fcm = LoopbackFCMServer(project_id="cache-app").start()
        cls.addClassCleanup(cls.fcm.stop)
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("mkt_campaign.fcm_service_account", cls.fcm.service_account())
        params.set_param("mkt_campaign.fcm_endpoint", cls.fcm.endpoint)
        cls.env["mkt.push.token"].create({"partner_id": cls.alice.id, "token": "cache-alice"})

    def setUp(self):
        super().setUp()
        fcm_api.clear_token_cache()
        self.fcm.access_tokens.clear()
        self.fcm.messages.clear()

    def _push_campaign(self, name):
        campaign, steps = self._create_campaign(
            [
                ("push", {"activity_type": "push", "push_title": "Hi", "push_body": "Sale"}),
            ],
            name=name,
        )
        self._launch(campaign)
        return steps["push"]

    def test_two_sends_one_oauth_request(self):
        first = self._push_campaign("First")
        self._run_queue(T0)
        second = self._push_campaign("Second")
        self._run_queue(T0)
        self.assertEqual(self._traces(first, self.alice).state, "processed")
        self.assertEqual(self._traces(second, self.alice).state, "processed")
        self.assertEqual(len(self.fcm.messages), 2)
        self.assertEqual(len(self.fcm.access_tokens), 1, "one OAuth request for both sends")

    def test_expired_or_revoked_token_is_renewed(self):
        FcmApi(self.env).send("cache-alice", "One", "1")
        FcmApi(self.env).send("cache-alice", "Two", "2")
        self.assertEqual(len(self.fcm.access_tokens), 1)
        # the cached token expires: the next client asks for a new one
        for key, (token, _expiry) in list(fcm_api._token_cache.items()):
            fcm_api._token_cache[key] = (token, 0.0)
        FcmApi(self.env).send("cache-alice", "Three", "3")
        self.assertEqual(len(self.fcm.access_tokens), 2)
        # the server revokes it before its expiry: one new token, the send goes through
        self.fcm.access_tokens.clear()
        FcmApi(self.env).send("cache-alice", "Four", "4")
        self.assertEqual(len(self.fcm.access_tokens), 1)
        self.assertEqual(
            [m["notification"]["title"] for m in self.fcm.messages], ["One", "Two", "Three", "Four"]
        )

    def test_cache_keyed_by_service_account(self):
        FcmApi(self.env).send("cache-alice", "One", "1")
        other = LoopbackFCMServer(project_id="other-app").start()
        self.addCleanup(other.stop)
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("mkt_campaign.fcm_service_account", other.service_account())
        params.set_param("mkt_campaign.fcm_endpoint", other.endpoint)
        FcmApi(self.env).send("cache-alice", "Two", "2")
        self.assertEqual(len(other.access_tokens), 1, "another account gets its own token")
        self.assertEqual(len(other.messages), 1)
