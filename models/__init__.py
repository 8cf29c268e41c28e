from . import mkt_campaign
from . import mkt_campaign_previous
from . import mkt_campaign_refinement
from . import mkt_activity
from . import mkt_participant
from . import mkt_trace
from . import mailing_mailing
from . import mailing_trace
