from . import mkt_pos_send
from . import mkt_campaign_template
from . import mkt_campaign_refuse
from . import mkt_campaign_rebuild
from . import mkt_participant_message
from . import mkt_campaign_test
from . import mail_compose_message
