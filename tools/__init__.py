from . import api_client
from . import fcm_api
from . import whatsapp_api
