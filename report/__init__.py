from . import mkt_campaign_report
