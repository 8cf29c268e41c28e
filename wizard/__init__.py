from . import mkt_pos_send
from . import mkt_campaign_template
from . import mkt_campaign_refuse
from . import mail_compose_message
