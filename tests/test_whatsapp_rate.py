import time
from collections import Counter

from odoo.tests import tagged

from .common import T0, MktCampaignCommon
from .test_whatsapp import WhatsAppMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWhatsAppRate(WhatsAppMixin, MktCampaignCommon):
    """WhatsApp steps send with concurrent requests on keep-alive
    connections, at most at the number's rate, each message once."""

    N = 200
    RATE = 100

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_whatsapp()
        cls.env["ir.config_parameter"].sudo().set_param("mkt_campaign.whatsapp_rate", cls.RATE)
        cls.crowd = cls.env["res.partner"].create(
            [
                {
                    "name": f"Rate Contact {n:03d}",
                    "phone": f"+32471{n:06d}",
                    "category_id": cls.tag.ids,
                }
                for n in range(cls.N)
            ]
        )

    def test_batch_sent_once_at_rate(self):
        template = self._approved_template()
        campaign, steps = self._create_campaign(
            [
                ("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
            ]
        )
        # the crowd only: the shared fixture's contacts have their own test
        campaign.domain = repr([("id", "in", self.crowd.ids)])
        self._launch(campaign)
        start = time.clock_gettime(time.CLOCK_MONOTONIC)
        self._run_queue(T0)
        elapsed = time.clock_gettime(time.CLOCK_MONOTONIC) - start

        traces = steps["hello"].trace_ids
        self.assertEqual(Counter(traces.mapped("state")), Counter({"processed": self.N}))
        sent_to = Counter(m["to"] for m in self.wa.messages)
        self.assertEqual(len(sent_to), self.N, "every contact got a message")
        self.assertEqual(max(sent_to.values()), 1, "nobody got it twice")
        self.assertEqual(len(set(traces.mapped("whatsapp_message_id"))), self.N)

        # the rate: never more than RATE messages in one second. The second
        # hundred cannot start before a second after the first message; a
        # margin for arrivals bunched by a loaded machine
        self.assertGreaterEqual(elapsed, 1.0)
        stamps = sorted(self.wa.sent_at)
        busiest, first = 0, 0
        for last, stamp in enumerate(stamps):
            while stamp - stamps[first] >= 1.0:
                first += 1
            busiest = max(busiest, last - first + 1)
        self.assertLessEqual(busiest, self.RATE * 1.25)
        # concurrent requests on kept-alive connections, not one per message
        self.assertLessEqual(self.wa.connections, 32)
        campaign.invalidate_recordset()
        self.assertEqual(campaign.sent_whatsapp_count, self.N)
