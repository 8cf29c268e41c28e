"""Client of the WhatsApp Business Cloud API (Graph API), a plain class as
``addons/sms/tools/sms_api.py`` is: configuration, HTTP session, errors.

The endpoint is a setting (``mkt_campaign.whatsapp_endpoint``): tests and the
demo database point it at a loopback server.

Messages of a batch go out with concurrent requests over the process's
keep-alive session, paced to the number's rate (``mkt_campaign.whatsapp_rate``,
80 messages/s by default, WhatsApp's standard throughput of a business
number): one limiter shared by every client of this process and number, so
that consecutive batches keep to the rate too."""

import collections
import contextlib
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from odoo.exceptions import UserError

from .api_client import ApiClient

DEFAULT_ENDPOINT = "https://graph.facebook.com/v21.0"
# Graph API error codes worth another attempt later: throttling, temporary
# outages (the others, e.g. 131026 undeliverable, are final)
TRANSIENT_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131048, 131056}
TIMEOUT = 30
DEFAULT_RATE = 80
# requests in flight at once: enough to keep the rate over a slow network
# (a Graph API call takes ~0.1-0.4 s: rate × latency), never more than this
MAX_CONCURRENCY = 32


def _clock():
    """Monotonic seconds; CLOCK_MONOTONIC directly where it exists, which
    tests that freeze the time (freezegun patches time.monotonic) leave
    running: the pacing is real time."""
    if hasattr(time, "clock_gettime"):
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    return time.monotonic()


class RateLimiter:
    """At most ``rate`` calls in any one second, shared by threads. Each call
    first reserves a turn (the first moment that keeps the last ``rate``
    turns more than a second apart, and no sooner than half an interval after
    the previous one), then checks the same against the moments calls really
    left, should a thread have woken late. After a pause (the queue's own
    work between chunks) the sending catches up at up to twice the pace,
    never above ``rate`` a second."""

    def __init__(self, rate):
        self.rate = rate
        self.size = max(1, int(rate))
        self.spacing = 1.0 / (2 * max(rate, 1))
        self.turns = collections.deque(maxlen=self.size)
        self.sent = collections.deque(maxlen=self.size)
        self.lock = threading.Lock()

    def _earliest(self, moments, now):
        if not moments:
            return now
        earliest = max(now, moments[-1] + self.spacing)
        if len(moments) == self.size:
            earliest = max(earliest, moments[0] + 1.0)
        return earliest

    def acquire(self):
        """Wait for the caller's turn."""
        with self.lock:
            now = _clock()
            turn = self._earliest(self.turns, now)
            self.turns.append(turn)
        if turn > now:
            time.sleep(turn - now)
        while True:
            with self.lock:
                now = _clock()
                # only the one-second window: the spacing is the turns' business
                wait = self.sent[0] + 1.0 - now if len(self.sent) == self.size else 0.0
                if wait <= 0:
                    self.sent.append(now)
                    return
            time.sleep(wait)


# per process: the limiter of each sending number, the session of each
# endpoint and token
_limiters = {}
_sessions = {}
_registry_lock = threading.Lock()


def get_session(endpoint, token):
    """The process's HTTP session of one endpoint and token: connections
    stay open from one batch to the next, one per request in flight
    (urllib3's pool is thread-safe)."""
    with _registry_lock:
        session = _sessions.get((endpoint, token))
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=MAX_CONCURRENCY)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _sessions[(endpoint, token)] = session
        return session


def get_limiter(key, rate):
    """The process's limiter of one sending number (``key``) at ``rate``."""
    with _registry_lock:
        limiter = _limiters.get(key)
        if limiter is None or limiter.rate != rate:
            limiter = _limiters[key] = RateLimiter(rate)
        return limiter


class WhatsAppError(Exception):
    def __init__(self, message, transient=False, code=None):
        super().__init__(message)
        self.transient = transient
        self.code = code


class WhatsAppApi(ApiClient):
    """One client per batch of calls: the requests share the process's
    keep-alive HTTP session of the endpoint (``get_session``).
    Raises ``UserError`` when WhatsApp is not configured."""

    def _get_config(self):
        # ir.config_parameter is admin-only: the provider's settings, kept in this
        # client (a manager submits templates; the queue sends)
        params = self.env["ir.config_parameter"].sudo()
        config = {
            "endpoint": (
                params.get_param("mkt_campaign.whatsapp_endpoint") or DEFAULT_ENDPOINT
            ).rstrip("/"),
            "token": params.get_param("mkt_campaign.whatsapp_token"),
            "phone_number_id": params.get_param("mkt_campaign.whatsapp_phone_number_id"),
            "account_id": params.get_param("mkt_campaign.whatsapp_account_id"),
            "rate": DEFAULT_RATE,
        }
        with contextlib.suppress(ValueError):
            config["rate"] = max(
                1, int(params.get_param("mkt_campaign.whatsapp_rate") or DEFAULT_RATE)
            )
        missing = [
            label
            for key, label in (
                ("token", self.env._("access token")),
                ("phone_number_id", self.env._("phone number ID")),
                ("account_id", self.env._("business account ID")),
            )
            if not config[key]
        ]
        if missing:
            raise UserError(
                self.env._(
                    "WhatsApp is not configured: set the %(missing)s in Marketing > "
                    "Configuration > Settings.",
                    missing=", ".join(missing),
                )
            )
        return config

    @property
    def session(self):
        """The process's keep-alive session of this endpoint and token, kept
        across batches (its connections too); ``close()`` leaves it open."""
        if self._session is None:
            self._session = get_session(self.config["endpoint"], self.config["token"])
        return self._session

    def close(self):
        self._session = None

    def _request(self, method, path, payload=None, params=None):
        """The HTTP exchange alone (safe in a thread: no database, no
        translation): (status, decoded JSON or {}, text, reason)."""
        response = self.session.request(
            method,
            f"{self.config['endpoint']}/{path}",
            json=payload,
            params=params,
            timeout=TIMEOUT,
        )
        try:
            data = response.json()
        except ValueError:
            data = {}
        return response.status_code, data, response.text, response.reason

    def _answer(self, result):
        """The decoded answer of a ``_request`` result (or the exception it
        raised), or ``WhatsAppError`` (``transient`` when worth another
        attempt later)."""
        if isinstance(result, requests.RequestException):
            return WhatsAppError(
                self.env._("WhatsApp API unreachable: %(error)s", error=result), transient=True
            )
        status, data, text, reason = result
        if status >= 400 or (isinstance(data, dict) and "error" in data):
            error = data.get("error") or {} if isinstance(data, dict) else {}
            code = error.get("code")
            transient = status >= 500 or status == 429 or code in TRANSIENT_CODES
            return WhatsAppError(
                self.env._(
                    "WhatsApp API error %(code)s: %(message)s",
                    code=code or status,
                    message=error.get("message") or text[:200] or reason,
                ),
                transient=transient,
                code=code,
            )
        return data

    def call(self, method, path, payload=None, params=None):
        """One Graph API request; returns the decoded JSON answer or raises
        ``WhatsAppError`` (``transient`` when worth another attempt later)."""
        try:
            result = self._request(method, path, payload, params)
        except requests.RequestException as error:
            result = error
        answer = self._answer(result)
        if isinstance(answer, WhatsAppError):
            if isinstance(result, Exception):
                raise answer from result
            raise answer
        return answer

    # ------------------------------------------------------------------
    # Endpoints
    # ------------------------------------------------------------------

    def send_message(self, payload):
        """Send one message (a template message payload); returns the id
        WhatsApp gave it (wamid), or None."""
        data = self.call("POST", f"{self.config['phone_number_id']}/messages", payload)
        return (data.get("messages") or [{}])[0].get("id")

    def send_messages(self, payloads):
        """Send template messages at the number's rate with concurrent
        requests; returns, in the order of ``payloads``, each message's wamid
        (or None) or the ``WhatsAppError`` it met. Each payload is sent once:
        nothing is retried here (a timed-out request may have been delivered);
        the queue retries transient errors later."""
        if not payloads:
            return []
        path = f"{self.config['phone_number_id']}/messages"
        rate = self.config["rate"]
        limiter = get_limiter((self.config["endpoint"], self.config["phone_number_id"]), rate)
        _session = self.session  # made here once, not by the threads

        def send(payload):
            limiter.acquire()
            try:
                return self._request("POST", path, payload)
            except requests.RequestException as error:
                return error

        workers = min(len(payloads), MAX_CONCURRENCY, max(4, math.ceil(rate / 4)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mkt-whatsapp") as pool:
            results = list(pool.map(send, payloads))
        answers = []
        for result in results:
            answer = self._answer(result)
            if not isinstance(answer, WhatsAppError):
                answer = (answer.get("messages") or [{}])[0].get("id")
            answers.append(answer)
        return answers

    def submit_template(self, values):
        """Submit a message template for approval; returns WhatsApp's answer
        (``id``, ``status``)."""
        return self.call("POST", f"{self.config['account_id']}/message_templates", values)

    def get_templates(self, name):
        """The account's templates of that name (every language)."""
        data = self.call(
            "GET", f"{self.config['account_id']}/message_templates", params={"name": name}
        )
        return data.get("data", [])
