from . import mkt_pos_send
