"""What the provider clients (tools/whatsapp_api.py, tools/fcm_api.py) share:
one keep-alive HTTP session per batch of calls, closed by ``close()`` or at
the end of a ``with`` block, and the configuration read when the client is
made (``_get_config`` raises ``UserError`` when the provider is not set up)."""


class ApiClient:
    def __init__(self, env):
        self.env = env
        self.config = self._get_config()
        self._session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _get_config(self):
        raise NotImplementedError

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None
